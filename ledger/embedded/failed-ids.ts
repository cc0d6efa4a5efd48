import { Column } from './column.js';
import { hashWords, IdIndex, type IdKey, type IdSource, newIdKey } from './id-index.js';

/**
 * Transfer ids whose first attempt failed with a transient result (TigerBeetle's "orphaned"
 * ids): creating them again answers `id_already_failed` forever. Kept off the heap like the
 * transfers: 16 bytes per id in a column plus its index entry. Append-only: an id is never
 * forgotten, not even when its linked chain is rolled back (as before).
 */
export class FailedIds implements IdSource {
  readonly ids = new Column(16);
  private readonly index = new IdIndex(this);

  get count(): number {
    return this.ids.count;
  }

  idWord(slot: number, k: number): number {
    return this.ids.word(slot, k);
  }

  has(key: IdKey): boolean {
    return this.index.find(key) >= 0;
  }

  add(key: IdKey): void {
    if (this.has(key)) return;
    const slot = this.ids.push();
    for (const [k, w] of [key.w0, key.w1, key.w2, key.w3].entries()) this.ids.setWord(slot, k, w);
    this.index.insert(key, slot);
  }

  /** Rebuilds the index after the column was loaded. */
  rebuildIndex(): void {
    const key = newIdKey();
    for (let slot = 0; slot < this.count; slot++) {
      key.w0 = this.idWord(slot, 0);
      key.w1 = this.idWord(slot, 1);
      key.w2 = this.idWord(slot, 2);
      key.w3 = this.idWord(slot, 3);
      key.hash = hashWords(key.w0, key.w1, key.w2, key.w3);
      this.index.insert(key, slot);
    }
  }
}
