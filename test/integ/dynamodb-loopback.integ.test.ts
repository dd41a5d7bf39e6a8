import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, expect, inject, it } from 'vitest';
import { recordFigures } from '../support/figures';

// DynamoDB Local has no option to choose its interface and binds every one; the local stack runs
// it under a launcher that binds 127.0.0.1 (infra/local/dynamodb-local.ts). The shared stack's
// DynamoDB Local answers on loopback and refuses every other address of this machine (only this
// machine's own addresses are tried).

const { dynamodb } = inject('endpoints');
const port = Number(new URL(dynamodb).port);

/** `connected`, or the error code of the attempt (ECONNREFUSED: nothing listens there). */
function tryConnect(host: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

/** This machine's own addresses other than loopback (IPv6 link-local ones need a zone: left out). */
function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && !a.address.toLowerCase().startsWith('fe80:'))
    .map((a) => (a as { address: string }).address);
}

describe('DynamoDB Local is reachable on loopback only', () => {
  it("answers on 127.0.0.1 and refuses this machine's other addresses", async () => {
    expect(await tryConnect('127.0.0.1')).toBe('connected');
    const addresses = ownAddresses();
    // Nothing to try would prove nothing: a machine running this has an address beyond loopback.
    expect(addresses.length, 'no non-loopback address on this machine').toBeGreaterThan(0);
    const answers = Object.fromEntries(
      await Promise.all(addresses.map(async (a) => [a, await tryConnect(a)])),
    );
    for (const [address, answer] of Object.entries(answers)) expect(answer, address).toBe('ECONNREFUSED');
    await recordFigures('dynamodb-loopback', {
      loopback: 'connected',
      otherAddresses: addresses.length,
      refused: Object.values(answers).filter((a) => a === 'ECONNREFUSED').length,
    });
  });
});
