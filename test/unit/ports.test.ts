import { describe, expect, it } from 'vitest';
import { LocalStackError } from '../../infra/local/errors';
import { DEFAULT_PORTS, findFreePorts, resolvePorts } from '../../infra/local/ports';

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
    expect(ports).toHaveLength(9);
    expect(new Set(ports).size).toBe(9);
    for (const port of ports) expect(port).toBeGreaterThan(0);
  });
});
