/**
 * A minimal XML reader for the simulator's TwiML: elements, attributes, text and the five
 * predefined entities plus numeric references. Enough for what a voice provider must read;
 * throws on malformed input (the simulator records that as a failed call).
 */

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlNode[];
}

export type XmlNode = XmlElement | string;

/** Nesting depth accepted, at most (TwiML needs 3). */
const depthMax = 32;

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    if (entity.startsWith('#x')) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[entity]!;
  });
}

export function parseXml(source: string): XmlElement {
  const text = source
    .replace(/^\uFEFF/, '')
    .replace(/<\?xml[^?]*\?>/, '')
    .replace(/<!--[\s\S]*?-->/g, '');
  const tag = /<\/?([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  const root: XmlElement = { name: '#document', attributes: {}, children: [] };
  const stack: XmlElement[] = [root];
  let at = 0;
  for (let match = tag.exec(text); match !== null; match = tag.exec(text)) {
    const between = text.slice(at, match.index);
    if (between.trim() !== '') stack.at(-1)!.children.push(decodeEntities(between));
    at = tag.lastIndex;
    const [whole, name, attrs, selfClosing] = match as unknown as [string, string, string, string];
    if (whole.startsWith('</')) {
      const open = stack.pop();
      if (open === undefined || open.name !== name || stack.length === 0) throw new Error(`xml: unexpected </${name}>`);
      continue;
    }
    const element: XmlElement = { name, attributes: {}, children: [] };
    for (const a of attrs.matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) element.attributes[a[1]!] = decodeEntities(a[2] ?? a[3] ?? '');
    stack.at(-1)!.children.push(element);
    if (selfClosing !== '/') {
      if (stack.length > depthMax) throw new Error('xml: too deep');
      stack.push(element);
    }
  }
  if (text.slice(at).trim() !== '') throw new Error('xml: text after the last tag');
  if (stack.length !== 1) throw new Error(`xml: <${stack.at(-1)!.name}> not closed`);
  const elements = root.children.filter((c): c is XmlElement => typeof c !== 'string');
  if (elements.length !== 1 || root.children.length !== 1) throw new Error('xml: expected exactly one root element');
  return elements[0]!;
}

/** The concatenated text inside an element. */
export function textOf(element: XmlElement): string {
  return element.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
}
