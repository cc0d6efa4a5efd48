import type { Logger } from 'pino';
import type { Accepted, CallPlacement, VoiceChannel, VoiceChannelListener } from './channels.js';
import { type ConfirmPassword, type IvrLimits, IvrSession, type IvrStep } from './ivr-dialogue.js';
import { renderTwiml, type TwimlUrls, twimlContentType } from './twiml.js';
import type { WebhookRequest, WebhookResponse } from './webhook-server.js';

/**
 * Calls through a TwiML-compatible voice provider (Twilio's REST API with a configurable base
 * URL): StartCall creates the call with `Calls.json`; the provider then fetches our answer
 * webhook (TwiML), posts gathered digits and status callbacks. The webhook server checks
 * signatures before any handler here runs. Digits go to authz only.
 */

export interface TwilioVoiceOptions {
  /** e.g. https://api.twilio.com, or the simulator's URL. */
  baseUrl: string;
  accountSid: string;
  /** SECRET: the REST API password and the webhook HMAC key. */
  authToken: string;
  /** The caller id, E.164. */
  from: string;
}

export interface VoiceLimits {
  /** Creating a call (POST Calls.json) waits at most this long; then UNAVAILABLE. */
  callCreateTimeoutMs: number;
  /** The provider lets the phone ring at most this long (its `Timeout`). */
  ringSecondsMax: number;
  /** Calls in progress, at most; more is RESOURCE_EXHAUSTED. */
  callsInProgressMax: number;
  /** A call's state is dropped this long after it was placed, whatever happened. */
  callStateTtlMs: number;
}

export const voiceLimitsDefault: VoiceLimits = { callCreateTimeoutMs: 10_000, ringSecondsMax: 30, callsInProgressMax: 10_000, callStateTtlMs: 3600_000 };

/** Webhook paths, below the public base URL. */
export const voicePaths = { answer: '/voice/answer', prompt: '/voice/prompt', digits: '/voice/digits', status: '/voice/status' } as const;

interface CallState {
  session: IvrSession;
  placedAtMs: number;
  providerSid: string | undefined;
  answered: boolean;
  /** A final event (no answer, busy, failed) was reported. */
  settled: boolean;
}

const finalStatuses = new Set(['completed', 'no-answer', 'busy', 'failed', 'canceled']);

export class TwilioVoiceChannel implements VoiceChannel {
  private readonly calls = new Map<string, CallState>();

  constructor(
    private readonly options: TwilioVoiceOptions,
    private readonly limits: VoiceLimits,
    private readonly ivrLimits: IvrLimits,
    /** The public base URL of the webhook server (known once it listens). */
    private readonly webhookBaseUrl: () => string,
    private readonly listener: VoiceChannelListener,
    private readonly confirm: ConfirmPassword,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private url(path: string, query: Record<string, string | number>): string {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
    return `${this.webhookBaseUrl().replace(/\/+$/, '')}${path}?${search}`;
  }

  async place(call: CallPlacement): Promise<Accepted> {
    this.sweep();
    if (this.calls.size >= this.limits.callsInProgressMax)
      return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `too many calls in progress (${this.limits.callsInProgressMax})` };
    const session = new IvrSession(call, this.confirm, this.ivrLimits, () => this.listener.digits(call.callId));
    // Registered before the request: the provider may call back before it answers us.
    const state: CallState = { session, placedAtMs: this.now(), providerSid: undefined, answered: false, settled: false };
    this.calls.set(call.callId, state);
    const result = await this.create(call);
    if (!result.ok) {
      this.calls.delete(call.callId);
      return result;
    }
    state.providerSid = result.sid;
    this.logger.info({ callId: call.callId, reference: call.reference, providerSid: result.sid }, 'call placed');
    return { ok: true };
  }

  private async create(call: CallPlacement): Promise<Accepted & { sid?: string }> {
    const form = new URLSearchParams({
      To: call.to,
      From: this.options.from,
      Url: this.url(voicePaths.answer, { call: call.callId }),
      Method: 'POST',
      StatusCallback: this.url(voicePaths.status, { call: call.callId }),
      StatusCallbackMethod: 'POST',
      Timeout: String(this.limits.ringSecondsMax),
    });
    for (const event of ['initiated', 'ringing', 'answered', 'completed']) form.append('StatusCallbackEvent', event);
    const endpoint = `${this.options.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(this.options.accountSid)}/Calls.json`;
    const basic = Buffer.from(`${this.options.accountSid}:${this.options.authToken}`).toString('base64');
    let response: Response;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form,
        signal: AbortSignal.timeout(this.limits.callCreateTimeoutMs),
      });
    } catch (error) {
      this.logger.warn({ err: { name: (error as Error).name, message: (error as Error).message } }, 'voice provider unreachable');
      return { ok: false, code: 'UNAVAILABLE', message: 'the voice provider is unreachable' };
    }
    const json = (await response.json().catch(() => ({}))) as { sid?: unknown; code?: unknown };
    if (response.ok && typeof json.sid === 'string') return { ok: true, sid: json.sid };
    this.logger.warn({ status: response.status, providerCode: json.code }, 'voice provider refused the call');
    if (response.status === 429 || response.status >= 500) return { ok: false, code: 'UNAVAILABLE', message: `the voice provider answered ${response.status}` };
    if (response.status === 400) return { ok: false, code: 'INVALID_ARGUMENT', message: 'the voice provider refused the call (invalid number?)' };
    return { ok: false, code: 'INTERNAL', message: `the voice provider answered ${response.status}` };
  }

  /** One signed webhook request (the server has checked the signature). */
  async handle(request: WebhookRequest): Promise<WebhookResponse> {
    const callId = request.query.get('call') ?? '';
    const state = this.calls.get(callId);
    if (state === undefined) return { status: 404 };
    const providerSid = state.providerSid ?? request.params.get('CallSid') ?? callId;
    const accountSid = request.params.get('AccountSid');
    if (accountSid !== null && accountSid !== this.options.accountSid) return { status: 403 };
    switch (request.path) {
      case voicePaths.answer:
        this.answered(callId, state);
        return this.twiml(callId, state.session.open());
      case voicePaths.prompt:
        return this.twiml(callId, state.session.silence(Number(request.query.get('after'))));
      case voicePaths.digits: {
        const round = Number(request.query.get('round'));
        // DTMF is 0-9, * and #: anything else is not a keyed password.
        const digits = (request.params.get('Digits') ?? '').replace(/[^0-9*#]/g, '').slice(0, state.session.call.gather.digitsMax);
        return this.twiml(callId, await state.session.digits(round, digits, providerSid));
      }
      case voicePaths.status:
        this.status(callId, state, request.params.get('CallStatus') ?? '');
        return { status: 204 };
      default:
        return { status: 404 };
    }
  }

  private twiml(callId: string, steps: IvrStep[]): WebhookResponse {
    const language = this.calls.get(callId)?.session.call.announcement.language ?? 'en-US';
    const urls: TwimlUrls = {
      digits: (round) => this.url(voicePaths.digits, { call: callId, round }),
      prompt: (afterRound) => this.url(voicePaths.prompt, { call: callId, after: afterRound }),
    };
    return { status: 200, contentType: twimlContentType, body: renderTwiml(steps, language, urls) };
  }

  private answered(callId: string, state: CallState): void {
    if (state.answered) return;
    state.answered = true;
    this.listener.answered(callId);
  }

  private status(callId: string, state: CallState, status: string): void {
    if (status === 'in-progress' || status === 'answered' || status === 'completed') this.answered(callId, state);
    if (!state.settled && !state.answered) {
      if (status === 'no-answer') this.listener.noAnswer(callId);
      else if (status === 'busy') this.listener.busy(callId);
      else if (status === 'failed' || status === 'canceled') this.listener.failed(callId, status);
    } else if (!state.settled && (status === 'failed' || status === 'canceled')) {
      this.listener.failed(callId, status);
    }
    if (!finalStatuses.has(status)) return;
    state.settled = true;
    this.calls.delete(callId);
    this.logger.info({ callId, status }, 'call ended');
  }

  /** Drops calls older than callStateTtlMs (the provider never reported their end). */
  private sweep(): void {
    const nowMs = this.now();
    for (const [callId, state] of this.calls) {
      if (nowMs - state.placedAtMs <= this.limits.callStateTtlMs) break; // insertion order = placement order
      this.calls.delete(callId);
    }
  }

  async close(): Promise<void> {
    this.calls.clear();
  }
}
