import { Code } from '@connectrpc/connect';
import test from 'ava';
import { startEnv } from '../../e2e/harness.js';
import { answerLabel, frameCases, sendRaw } from '../../reliability/http2-frames.js';

// The Connect port (connect-node) answers undecodable request bodies INVALID_ARGUMENT in every
// protocol, like the grpc-js port — not the library's INTERNAL (services/rpc/wire-errors.ts).

const undecodable = [
  'garbage protobuf bytes',
  'invalid UTF-8 in a string field',
  'a field number 0 (invalid tag)',
  'compressed flag without grpc-encoding',
  'Connect: garbage protobuf body',
];

test('the Connect port: undecodable bodies are INVALID_ARGUMENT (gRPC and Connect protocols); well-formed calls still succeed', async (t) => {
  const env = await startEnv('connect', 'memory');
  t.teardown(() => env.close());
  const cases = frameCases(env.app.adminKey, ['grpc', 'connect']);
  const answers: Record<string, string> = {};
  for (const c of cases.filter((x) => undecodable.includes(x.name) || x.name.includes('(control)')))
    answers[c.name] = answerLabel(await sendRaw(env.connectPort, c), c.protocol);
  t.deepEqual(answers, {
    'well-formed CheckBalanced (control)': '0',
    'compressed flag without grpc-encoding': String(Code.InvalidArgument),
    'garbage protobuf bytes': String(Code.InvalidArgument),
    'invalid UTF-8 in a string field': String(Code.InvalidArgument),
    'a field number 0 (invalid tag)': String(Code.InvalidArgument),
    'Connect: well-formed JSON (control)': 'http:200',
    'Connect: garbage protobuf body': 'connect:invalid_argument',
  });
  t.true((await env.admin.ledger.checkBalanced({})).balanced, 'the server still answers');
});
