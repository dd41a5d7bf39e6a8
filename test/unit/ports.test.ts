import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { LocalStackError } from '../../infra/local/errors';
import {
  checkPorts,
  DEFAULT_PORTS,
  findFreePorts,
  LOCAL_SERVICES,
  listenAs,
  PORT_ENV,
  PORT_NAMES,
  resolvePorts,
} from '../../infra/local/ports';

describe('resolvePorts', () => {
  it('uses the documented defaults without overrides', () => {
    expect(resolvePorts({})).toEqual({
      dynamodb: 8000,
      sqs: 9324,
      kinesis: 4567,
      cognito: 9229,
      lambda: 9001,
      keyApi: 3000,
      userApi: 3001,
      exampleApi: 3002,
      web: 5173,
      stripe: 12111,
      billingWebhook: 3003,
      ops: 3004,
    });
  });

  it('takes each port from its TOLLGATE_PORT_* variable', () => {
    const ports = resolvePorts({
      TOLLGATE_PORT_DYNAMODB: '18000',
      TOLLGATE_PORT_SQS: '19324',
      TOLLGATE_PORT_KINESIS: '14567',
      TOLLGATE_PORT_COGNITO: '19229',
      TOLLGATE_PORT_LAMBDA: '19001',
      TOLLGATE_PORT_KEY_API: '13000',
      TOLLGATE_PORT_USER_API: ' 13001 ',
      TOLLGATE_PORT_EXAMPLE_API: '13002',
      TOLLGATE_PORT_WEB: '15173',
      TOLLGATE_PORT_STRIPE: '22111',
      TOLLGATE_PORT_BILLING_WEBHOOK: '13003',
      TOLLGATE_PORT_OPS: '13004',
    });
    expect(ports).toEqual({
      dynamodb: 18000,
      sqs: 19324,
      kinesis: 14567,
      cognito: 19229,
      lambda: 19001,
      keyApi: 13000,
      userApi: 13001,
      exampleApi: 13002,
      web: 15173,
      stripe: 22111,
      billingWebhook: 13003,
      ops: 13004,
    });
  });

  it('keeps the defaults for unset or empty variables', () => {
    expect(resolvePorts({ TOLLGATE_PORT_SQS: '', TOLLGATE_PORT_KEY_API: '4000' })).toEqual({
      ...DEFAULT_PORTS,
      keyApi: 4000,
    });
  });

  it.each(['abc', '0', '65536', '-1', '80.5', '1e3', '0x50'])(
    'rejects %j with a message naming the variable',
    (value) => {
      expect(() => resolvePorts({ TOLLGATE_PORT_SQS: value })).toThrow(LocalStackError);
      expect(() => resolvePorts({ TOLLGATE_PORT_SQS: value })).toThrow(
        `TOLLGATE_PORT_SQS must be a port number from 1 to 65535, got "${value}"`,
      );
    },
  );

  it('rejects two services on one port', () => {
    expect(() => resolvePorts({ TOLLGATE_PORT_USER_API: '3000' })).toThrow(
      'TOLLGATE_PORT_KEY_API and TOLLGATE_PORT_USER_API both resolve to port 3000',
    );
  });
});

describe('findFreePorts', () => {
  it('picks distinct free ports', async () => {
    const ports = Object.values(await findFreePorts());
    expect(ports).toHaveLength(12);
    expect(new Set(ports).size).toBe(12);
    for (const port of ports) expect(port).toBeGreaterThan(0);
  });
});

describe('the table of local services', () => {
  it('gives every service its own default port and its own variable', () => {
    expect(PORT_NAMES).toHaveLength(12);
    expect(new Set(Object.values(DEFAULT_PORTS)).size).toBe(12);
    expect(new Set(Object.values(PORT_ENV)).size).toBe(12);
    for (const name of PORT_NAMES) {
      expect(DEFAULT_PORTS[name]).toBe(LOCAL_SERVICES[name].defaultPort);
      expect(PORT_ENV[name]).toBe(LOCAL_SERVICES[name].env);
      expect(PORT_ENV[name]).toMatch(/^TOLLGATE_PORT_[A-Z_]+$/);
    }
  });
});

describe('a port that is taken', () => {
  it('fails the check with its label and the variable that moves it', async () => {
    const ports = await findFreePorts();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(ports.sqs, '127.0.0.1', resolve));
    try {
      await expect(checkPorts(ports)).rejects.toThrow(
        new LocalStackError(`port ${ports.sqs} (SQS) is in use: stop what uses it or set TOLLGATE_PORT_SQS`),
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    await expect(checkPorts(ports)).resolves.toBeUndefined();
  });

  it('taken after the check, fails the listener the same way', async () => {
    const ports = await findFreePorts();
    const taken = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
    await expect(listenAs(ports, 'web', () => Promise.reject(taken))).rejects.toThrow(
      `port ${ports.web} (web page) is in use: stop what uses it or set TOLLGATE_PORT_WEB`,
    );
    const other = new Error('something else');
    await expect(listenAs(ports, 'web', () => Promise.reject(other))).rejects.toBe(other);
  });
});
