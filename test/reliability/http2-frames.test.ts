import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code } from '@connectrpc/connect';
import test from 'ava';
import { pino } from 'pino';
import { createApp } from '../../services/app.js';
import { loadConfig } from '../../services/config.js';
import { startServers } from '../../services/server.js';
import { answerLabel, frameCases, judgeFrame, type RawAnswer, sendGarbageConnection, sendRaw } from './http2-frames.js';

// Hostile HTTP/2 from a raw node:http2 client against the real gRPC port (grpc-js): the answers
// the fuzz scenario counts on, and the server still serving afterwards.

test('the gRPC port answers malformed frames precisely and keeps serving', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-frames-'));
  const adminKey = `cs_admin_${randomBytes(12).toString('hex')}`;
  const app = await createApp({
    config: { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey },
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: true,
    logger: pino({ level: 'silent' }),
  });
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, tls: null });
  t.teardown(async () => {
    await servers.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const cases = new Map(frameCases(adminKey, ['grpc']).map((c) => [c.name, c]));
  const answer = async (name: string) => answerLabel(await sendRaw(servers.grpcPort, cases.get(name)!), 'grpc');
  t.is(await answer('well-formed CheckBalanced (control)'), '0');
  t.is(await answer('garbage protobuf bytes'), String(Code.InvalidArgument));
  t.is(await answer('invalid UTF-8 in a string field'), String(Code.InvalidArgument));
  t.is(await answer('message over the receive limit'), String(Code.ResourceExhausted));
  t.is(await answer('length prefix of 4 GiB'), String(Code.ResourceExhausted));
  t.is(await answer('content-type text/plain'), 'http:415');
  t.is(await answer('unknown method'), String(Code.Unimplemented));
  t.is(await answer('authorization header of 40 KiB'), String(Code.Unauthenticated));
  t.is(await answer('reset after half a message'), 'transport');
  t.is(await sendGarbageConnection(servers.grpcPort), 'closed');
  t.is(await answer('well-formed CheckBalanced (control)'), '0', 'still serving');
});

test('the frame judge calls INTERNAL, no answer and an imprecise answer violations', (t) => {
  const c = frameCases('k', ['grpc']).find((x) => x.name === 'garbage protobuf bytes')!;
  const base: RawAnswer = {
    httpStatus: 200,
    grpcStatus: Code.InvalidArgument,
    grpcMessage: '',
    connectCode: undefined,
    transportError: undefined,
    timedOut: false,
  };
  t.is(judgeFrame(c, base), undefined);
  t.regex(judgeFrame(c, { ...base, grpcStatus: Code.Internal, grpcMessage: 'boom' })!, /^server error INTERNAL "boom"/);
  t.regex(judgeFrame(c, { ...base, timedOut: true })!, /^no answer/);
  t.regex(judgeFrame(c, { ...base, grpcStatus: Code.NotFound })!, /NOT_FOUND, expected INVALID_ARGUMENT/);
  const connect = frameCases('k', ['connect']).find((x) => x.name === 'Connect: garbage protobuf body')!;
  t.regex(judgeFrame(connect, { ...base, grpcStatus: undefined, httpStatus: 500, connectCode: 'internal' })!, /^server error connect:internal/);
});
