/**
 * SECOND_CODE.md's worked example (the RFC 6287 test key) and its one-field-changed table, for
 * the terminal's OCRA in Node (ocra.test.ts) and in Chromium (terminal.test.ts).
 */
export const exampleSecretAscii = '12345678901234567890123456789012';

export interface ExampleFields {
  firstCode: string;
  amount: bigint;
  currency: string;
  payeeAccountId: string;
}

export const example: ExampleFields = { firstCode: '04921735', amount: 12550n, currency: 'EUR', payeeAccountId: '3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90' };
export const exampleQuestion = '0492173512550EUR3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90';

export const workedExample: readonly [Partial<ExampleFields>, string][] = [
  [{}, '32385724'],
  [{ firstCode: '04921736' }, '16162867'],
  [{ amount: 12551n }, '65149742'],
  [{ amount: 12549n }, '95916947'],
  [{ currency: 'USD' }, '19753349'],
  [{ payeeAccountId: '3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c91' }, '74012444'],
];
