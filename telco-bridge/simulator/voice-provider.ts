import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { twilioSignature } from '../twilio-signature.js';
import { parseXml, textOf, type XmlElement } from './xml.js';

/**
 * A TwiML voice provider for tests and the demo, speaking Twilio's protocol: it accepts
 * `POST /2010-04-01/Accounts/{sid}/Calls.json` (HTTP basic auth), then "places" the call: status
 * callbacks, the answer webhook, <Say>/<Gather>/<Redirect>/<Hangup>, keying the digits the
 * handset's script provides — every request signed with X-Twilio-Signature, as Twilio does. It
 * records what each call heard.
 */

/** Per number: one entry per <Gather> (digits, '' for silence; a trailing finish key is stripped), or the whole call's fate. */
export type HandsetScript = string[] | 'no-answer' | 'busy' | 'failed';

export type CallEnd = 'hangup' | 'end-of-twiml' | 'no-answer' | 'busy' | 'failed' | 'webhook-error' | 'steps-limit';

export interface SimulatedCall {
  sid: string;
  to: string;
  from: string;
  /** The answer URL given in Calls.json. */
  url: string;
  statusCallback: string;
  statusCallbackEvents: string[];
  /** Every <Say> heard, in order. */
  says: string[];
  /** Gathers answered with digits. */
  gathersAnswered: number;
  /** Webhook requests made (answer, gather actions, redirects, status callbacks) and their HTTP status. */
  requests: { url: string; status: number }[];
  /** CallStatus values posted to the status callback. */
  statuses: string[];
  /** Set when the call is over. */
  end: CallEnd | undefined;
  /** What went wrong, for 'webhook-error'. */
  error: string | undefined;
  /** True once the call ended and its last status callback was answered. */
  over: boolean;
}

export interface VoiceProviderOptions {
  accountSid: string;
  authToken: string;
  host?: string;
  port?: number;
  /** Delay before the call is "answered", ms (default 0). */
  answerDelayMs?: number;
}

export interface VoiceProvider {
  /** What the bridge is configured with as voice.baseUrl. */
  baseUrl: string;
  port: number;
  /** Scripts what the handset `number` does with the calls it gets (entries are consumed across calls). */
  handset(number: string, script: HandsetScript): void;
  readonly calls: readonly SimulatedCall[];
  /** Calls.json requests refused for bad credentials. */
  readonly unauthorizedRequests: number;
  /** Calls created from now on ring until `resumeAnswering` (tests act while a call is pending). */
  pauseAnswering(): void;
  resumeAnswering(): void;
  /** Resolves with the `index`-th call to `to` once it has ended; rejects after `timeoutMs`. */
  waitForCallEnd(to: string, timeoutMs: number, index?: number): Promise<SimulatedCall>;
  close(): Promise<void>;
}

/** TwiML verbs followed per call, at most (the simulator never loops forever). */
const twimlStepsMax = 100;
/** Calls.json bodies larger than this are refused. */
const requestBytesMax = 64 * 1024;
/** Each webhook request waits at most this long. */
const webhookTimeoutMs = 10_000;
const pollMs = 20;

const digest = (value: string) => createHash('sha256').update(value).digest();

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > requestBytesMax) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function startVoiceProvider(options: VoiceProviderOptions): Promise<VoiceProvider> {
  const scripts = new Map<string, HandsetScript>();
  const calls: SimulatedCall[] = [];
  let unauthorized = 0;
  const running = new Set<Promise<void>>();
  let closed = false;
  let gate: { promise: Promise<void>; open: () => void } | undefined;

  /** POSTs a signed webhook for `call`; returns the response body, or undefined after recording an error. */
  const webhook = async (call: SimulatedCall, url: string, extra: Record<string, string>): Promise<string | undefined> => {
    const params: [string, string][] = Object.entries({
      AccountSid: options.accountSid,
      ApiVersion: '2010-04-01',
      CallSid: call.sid,
      CallStatus: 'in-progress',
      Direction: 'outbound-api',
      From: call.from,
      To: call.to,
      ...extra,
    });
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(options.authToken, url, params) },
        body: new URLSearchParams(params),
        signal: AbortSignal.timeout(webhookTimeoutMs),
      });
      const body = await response.text();
      call.requests.push({ url, status: response.status });
      if (response.status >= 300) {
        call.error = `${url} answered ${response.status}`;
        return undefined;
      }
      return body;
    } catch (error) {
      call.requests.push({ url, status: 0 });
      call.error = `${url}: ${(error as Error).message}`;
      return undefined;
    }
  };

  const status = async (call: SimulatedCall, event: string, callStatus: string) => {
    if (call.statusCallback === '' || !call.statusCallbackEvents.includes(event)) return;
    call.statuses.push(callStatus);
    await webhook(call, call.statusCallback, { CallStatus: callStatus });
  };

  /** The next script entry for a gather, Twilio-style: up to the finish key, at most numDigits. */
  const nextDigits = (call: SimulatedCall, gather: XmlElement): string => {
    const script = scripts.get(call.to);
    const entry = Array.isArray(script) ? (script.shift() ?? '') : '';
    const finishKey = gather.attributes.finishOnKey ?? '#';
    const keyed = finishKey === '' ? entry : entry.split(finishKey)[0]!;
    const numDigits = Number(gather.attributes.numDigits ?? '0');
    return numDigits > 0 ? keyed.slice(0, numDigits) : keyed;
  };

  /** Follows the TwiML in `body`; returns the next request to make, or how the call ended. */
  const follow = (call: SimulatedCall, body: string): { url: string; params: Record<string, string> } | CallEnd => {
    let root: XmlElement;
    try {
      root = parseXml(body);
    } catch (error) {
      call.error = `bad TwiML: ${(error as Error).message}`;
      return 'webhook-error';
    }
    if (root.name !== 'Response') {
      call.error = `TwiML root is <${root.name}>`;
      return 'webhook-error';
    }
    for (const verb of root.children) {
      if (typeof verb === 'string') continue;
      if (verb.name === 'Say') call.says.push(textOf(verb).trim());
      else if (verb.name === 'Hangup') return 'hangup';
      else if (verb.name === 'Redirect') return { url: textOf(verb).trim(), params: {} };
      else if (verb.name === 'Gather') {
        for (const inner of verb.children) if (typeof inner !== 'string' && inner.name === 'Say') call.says.push(textOf(inner).trim());
        const digits = nextDigits(call, verb);
        if (digits === '') continue; // silence: the call goes on with the verb after <Gather>
        call.gathersAnswered++;
        return { url: verb.attributes.action ?? '', params: { Digits: digits, FinishedOnKey: verb.attributes.finishOnKey ?? '' } };
      }
    }
    return 'end-of-twiml';
  };

  const run = async (call: SimulatedCall): Promise<void> => {
    await gate?.promise;
    await new Promise((resolve) => setTimeout(resolve, options.answerDelayMs ?? 0));
    const script = scripts.get(call.to);
    await status(call, 'initiated', 'initiated');
    await status(call, 'ringing', 'ringing');
    if (script === 'no-answer' || script === 'busy' || script === 'failed') {
      call.end = script;
      await status(call, 'completed', script);
      return;
    }
    await status(call, 'answered', 'in-progress');
    let body = await webhook(call, call.url, {});
    let end: CallEnd = 'steps-limit';
    for (let steps = 0; steps < twimlStepsMax; steps++) {
      if (body === undefined) {
        end = 'webhook-error';
        break;
      }
      const next = follow(call, body);
      if (typeof next === 'string') {
        end = next;
        break;
      }
      body = await webhook(call, next.url, next.params);
    }
    call.end = end;
    await status(call, 'completed', 'completed');
  };

  const createCall = async (req: IncomingMessage, res: ServerResponse, accountSid: string) => {
    const expected = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
    if (accountSid !== options.accountSid || !timingSafeEqual(digest(req.headers.authorization ?? ''), digest(expected))) {
      unauthorized++;
      return json(res, 401, { code: 20003, message: 'Authenticate', status: 401 });
    }
    const form = new URLSearchParams(await readBody(req));
    const to = form.get('To') ?? '';
    const from = form.get('From') ?? '';
    const url = form.get('Url') ?? '';
    if (!/^\+[1-9][0-9]{6,14}$/.test(to) || from === '' || !/^https?:\/\//.test(url)) {
      return json(res, 400, { code: 21201, message: 'To, From and Url are required', status: 400 });
    }
    const call: SimulatedCall = {
      sid: `CA${randomBytes(16).toString('hex')}`,
      to,
      from,
      url,
      statusCallback: form.get('StatusCallback') ?? '',
      statusCallbackEvents: form
        .getAll('StatusCallbackEvent')
        .flatMap((e) => e.split(/\s+/))
        .filter((e) => e !== ''),
      says: [],
      gathersAnswered: 0,
      requests: [],
      statuses: [],
      end: undefined,
      error: undefined,
      over: false,
    };
    calls.push(call);
    json(res, 201, { sid: call.sid, account_sid: options.accountSid, to, from, status: 'queued', api_version: '2010-04-01' });
    const task = run(call).finally(() => {
      call.over = true;
      running.delete(task);
    });
    running.add(task);
  };

  const server = createServer((req, res) => {
    const match = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls\.json$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (closed || req.method !== 'POST' || match === null) return json(res, 404, { code: 20404, message: 'Not found', status: 404 });
    createCall(req, res, decodeURIComponent(match[1]!)).catch(() => json(res, 400, { code: 21200, message: 'bad request', status: 400 }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    handset: (number, script) => void scripts.set(number, Array.isArray(script) ? [...script] : script),
    calls,
    get unauthorizedRequests() {
      return unauthorized;
    },
    pauseAnswering: () => {
      if (gate !== undefined) return;
      let open = () => {};
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    resumeAnswering: () => {
      gate?.open();
      gate = undefined;
    },
    waitForCallEnd: async (to, timeoutMs, index = 0) => {
      const endAt = Date.now() + timeoutMs;
      for (;;) {
        const call = calls.filter((c) => c.to === to)[index];
        if (call?.over === true) return call;
        if (Date.now() > endAt) throw new Error(`voice provider: call #${index} to ${to} did not end within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    },
    close: async () => {
      closed = true;
      gate?.open();
      await Promise.allSettled([...running]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
