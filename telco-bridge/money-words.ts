/**
 * Amounts in English words for text to speech: 4250 USD → "forty-two dollars and fifty
 * cents". Money stays bigint minor units throughout; no floats. Pure functions.
 */

const ones = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const tens = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
/** Short-scale names, enough for every uint64. */
const scales = ['', 'thousand', 'million', 'billion', 'trillion', 'quadrillion', 'quintillion'];

function underThousand(n: number): string {
  const words: string[] = [];
  if (n >= 100) {
    words.push(`${ones[Math.floor(n / 100)]} hundred`);
    n %= 100;
  }
  if (n >= 20) {
    words.push(n % 10 === 0 ? tens[n / 10]! : `${tens[Math.floor(n / 10)]}-${ones[n % 10]}`);
  } else if (n > 0) {
    words.push(ones[n]!);
  }
  return words.join(' ');
}

/** A non-negative integer in words: 1234567n → "one million two hundred thirty-four thousand five hundred sixty-seven". */
export function integerWords(value: bigint): string {
  if (value < 0n) throw new Error('assertion failed: integerWords of a negative number');
  if (value === 0n) return 'zero';
  const groups: string[] = [];
  for (let scale = 0; value > 0n; scale++) {
    const group = Number(value % 1000n);
    value /= 1000n;
    if (group === 0) continue;
    if (scale >= scales.length) throw new Error('assertion failed: integerWords beyond quintillions');
    groups.unshift(scale === 0 ? underThousand(group) : `${underThousand(group)} ${scales[scale]}`);
  }
  return groups.join(' ');
}

interface CurrencyWords {
  /** Digits after the decimal point (ISO 4217 minor unit). */
  exponent: number;
  major: [singular: string, plural: string];
  minor?: [singular: string, plural: string];
}

/** Currencies with spoken names; others fall back to ICU's name and "point" digits. */
const currencies: Record<string, CurrencyWords> = {
  USD: { exponent: 2, major: ['dollar', 'dollars'], minor: ['cent', 'cents'] },
  EUR: { exponent: 2, major: ['euro', 'euros'], minor: ['cent', 'cents'] },
  GBP: { exponent: 2, major: ['pound', 'pounds'], minor: ['penny', 'pence'] },
  JPY: { exponent: 0, major: ['yen', 'yen'] },
  CHF: { exponent: 2, major: ['Swiss franc', 'Swiss francs'], minor: ['centime', 'centimes'] },
  CAD: { exponent: 2, major: ['Canadian dollar', 'Canadian dollars'], minor: ['cent', 'cents'] },
  AUD: { exponent: 2, major: ['Australian dollar', 'Australian dollars'], minor: ['cent', 'cents'] },
};

const plural = (n: bigint, [one, many]: [string, string]) => `${integerWords(n)} ${n === 1n ? one : many}`;

/** ISO 4217 minor-unit digits of `currency` (ICU), or undefined for a code ICU does not know. */
export function currencyExponent(currency: string): number | undefined {
  const known = currencies[currency];
  if (known !== undefined) return known.exponent;
  if (!/^[A-Z]{3}$/.test(currency)) return undefined;
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return undefined;
  }
}

/**
 * `amount` minor units of `currency` in words: "forty-two dollars and fifty cents", "one pound",
 * "five hundred yen"; other currencies "twelve point five zero Swiss francs" style via ICU names.
 */
export function amountWords(amount: bigint, currency: string): string {
  const known = currencies[currency];
  const exponent = currencyExponent(currency) ?? 2;
  const unit = 10n ** BigInt(exponent);
  const major = amount / unit;
  const minor = amount % unit;
  if (known !== undefined) {
    if (known.minor === undefined || minor === 0n) return plural(major, known.major);
    if (major === 0n) return plural(minor, known.minor);
    return `${plural(major, known.major)} and ${plural(minor, known.minor)}`;
  }
  const name = currencyName(currency);
  if (minor === 0n) return `${integerWords(major)} ${name}`;
  const digits = minor
    .toString()
    .padStart(exponent, '0')
    .split('')
    .map((d) => ones[Number(d)])
    .join(' ');
  return `${integerWords(major)} point ${digits} ${name}`;
}

function currencyName(currency: string): string {
  try {
    return new Intl.DisplayNames('en', { type: 'currency' }).of(currency) ?? currency.split('').join(' ');
  } catch {
    return currency.split('').join(' ');
  }
}
