import test from 'ava';
import { codeTtlMsDefault, firstCodeDigits, firstCodeFormatOk, newFirstCode } from '../../../authz/codes/first-code.js';

test('bounds', (t) => {
  t.is(firstCodeDigits, 8);
  t.is(codeTtlMsDefault, 300_000);
});

test('first codes are 8 digits, spread over every position and digit', (t) => {
  const samples = 4000;
  const counts = Array.from({ length: firstCodeDigits }, () => new Array<number>(10).fill(0));
  const seen = new Set<string>();
  for (let i = 0; i < samples; i++) {
    const code = newFirstCode();
    t.regex(code, /^\d{8}$/);
    seen.add(code);
    [...code].forEach((digit, position) => {
      counts[position]![Number(digit)]! += 1;
    });
  }
  // 4000 draws from 10^8 codes: a collision is very unlikely (p ≈ 8%); allow a few.
  t.true(seen.size >= samples - 3);
  // Each digit should appear about 400 times per position; 250..550 is > 7 sigma wide.
  for (const row of counts) for (const count of row) t.true(count > 250 && count < 550, `count ${count}`);
});

test('firstCodeFormatOk', (t) => {
  t.true(firstCodeFormatOk('00000000'));
  t.true(firstCodeFormatOk('04921735'));
  t.false(firstCodeFormatOk('4921735'));
  t.false(firstCodeFormatOk('049217350'));
  t.false(firstCodeFormatOk('0492173a'));
});
