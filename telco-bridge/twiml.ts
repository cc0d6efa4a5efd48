import type { IvrStep } from './ivr-dialogue.js';

/**
 * Renders a call's dialogue steps as TwiML (Twilio's voice markup, which compatible providers
 * accept): <Say>, <Gather input="dtmf">, <Redirect>, <Hangup>. Every text and attribute is XML
 * escaped. Pure.
 */

export interface TwimlUrls {
  /** Where a gather posts its digits. */
  digits(round: number): string;
  /** Where the call goes after a silent gather. */
  prompt(afterRound: number): string;
}

export const twimlContentType = 'text/xml; charset=utf-8';

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function say(text: string, language: string): string {
  return `<Say language="${escapeXml(language)}">${escapeXml(text)}</Say>`;
}

function step(s: IvrStep, language: string, urls: TwimlUrls): string {
  switch (s.kind) {
    case 'say':
      return say(s.text, language);
    case 'hangup':
      return '<Hangup/>';
    case 'redirect':
      return `<Redirect method="POST">${escapeXml(urls.prompt(s.afterRound))}</Redirect>`;
    case 'gather': {
      const attributes = [
        'input="dtmf"',
        `finishOnKey="${escapeXml(s.spec.finishKey)}"`,
        `timeout="${s.spec.timeoutSeconds}"`,
        `numDigits="${s.spec.digitsMax}"`,
        `action="${escapeXml(urls.digits(s.round))}"`,
        'method="POST"',
      ];
      return `<Gather ${attributes.join(' ')}>${s.say.map((t) => say(t, language)).join('')}</Gather>`;
    }
  }
}

/** A complete TwiML document for `steps`. */
export function renderTwiml(steps: IvrStep[], language: string, urls: TwimlUrls): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Response>${steps.map((s) => step(s, language, urls)).join('')}</Response>`;
}
