/** Tiny DOM helpers: text only through `textContent`, never HTML strings. */

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`assertion failed: #${id} missing from the page`);
  return found as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
  ...children: (Node | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className !== '') node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const child of children) if (child !== undefined) node.append(child);
  return node;
}

export function button(text: string, className: string, onClick: () => void): HTMLButtonElement {
  const b = el('button', className, text);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

/** Shows exactly one of the page's screens. */
export function showScreen(id: 'enroll' | 'unlock' | 'payments'): void {
  for (const screen of ['enroll', 'unlock', 'payments']) byId(screen).hidden = screen !== id;
}

/** The page-level message line; empty text hides it. */
export function say(text: string, tone: 'bad' | 'good' = 'bad'): void {
  const line = byId('message');
  line.textContent = text;
  line.className = tone === 'good' ? 'message good' : 'message';
  line.hidden = text === '';
}

/** A form's field value (trimmed unless it is a secret the payer typed exactly). */
export function field(form: HTMLFormElement, name: string, trim = true): string {
  const input = form.elements.namedItem(name) as HTMLInputElement | null;
  if (input === null) throw new Error(`assertion failed: field ${name} missing`);
  return trim ? input.value.trim() : input.value;
}
