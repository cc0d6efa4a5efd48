import test from 'ava';
import { ConfigError, loadConfig } from '../../services/config.js';

test('COUNTERSIGN_LEDGER_HOLD_TIMEOUT: on, off, unset (the engine decides); anything else is refused naming the values', (t) => {
  t.is(loadConfig({}).ledgerHoldTimeout, undefined);
  t.is(loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: '' }).ledgerHoldTimeout, undefined);
  t.is(loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: 'on' }).ledgerHoldTimeout, true);
  t.is(loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: 'off' }).ledgerHoldTimeout, false);
  for (const bad of ['yes', 'ON', '1', 'true']) {
    const error = t.throws(() => loadConfig({ COUNTERSIGN_LEDGER_HOLD_TIMEOUT: bad }), { instanceOf: ConfigError });
    t.is(error?.message, `COUNTERSIGN_LEDGER_HOLD_TIMEOUT must be on or off, got "${bad}"`);
  }
});
