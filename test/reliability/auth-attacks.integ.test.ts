import { beforeAll, describe, expect, it } from 'vitest';
import { recordFigures } from '../support/figures';
import { attackerKey, cognitoLocalKeys, decodeClaims, signJwt } from '../support/jwt';
import { endpoints, signUpAndSignIn, type TestUser, userApi } from '../support/local-stack';

/** The one answer to every bad token: same status, same body, whatever was wrong with it. */
const BAD_TOKEN = {
  error: { code: 'unauthorized', message: 'The token is invalid or has expired; sign in again' },
};
const ROUTES = [
  ['GET', '/me'],
  ['GET', '/keys'],
  ['POST', '/keys'],
  ['GET', '/usage'],
  ['DELETE', '/keys/key_abc'],
] as const;

interface KeyView {
  id: string;
  status: string;
}

describe('auth attacks on the user API (it takes Cognito ID tokens only)', () => {
  let alice: TestUser;
  let bob: TestUser;
  let claims: Record<string, unknown>;
  const now = () => Math.floor(Date.now() / 1000);
  const cognito = cognitoLocalKeys();

  beforeAll(async () => {
    [alice, bob] = await Promise.all([signUpAndSignIn('alice'), signUpAndSignIn('bob')]);
    claims = decodeClaims(alice.idToken);
  });

  /** A token with Alice's real claims, changed as asked, signed as asked. */
  function forged(
    change: Record<string, unknown>,
    signer: Parameters<typeof signJwt>[2],
    header: Record<string, unknown> = { alg: 'RS256', kid: cognito.kid },
  ) {
    return signJwt(header, { ...claims, iat: now(), exp: now() + 600, ...change }, signer);
  }

  it('the control: a token forged with the right key and claims is accepted (so each refusal below is for its stated reason)', async () => {
    const token = forged({}, { rsa: cognito.privateKey });
    expect((await userApi(token, 'GET', '/me')).status).toBe(200);
    expect((await userApi(alice.idToken, 'GET', '/me')).status).toBe(200);
  });

  it('refuses every bad token with the same 401 and the same body', async () => {
    const attacker = attackerKey();
    const header = { alg: 'RS256', kid: cognito.kid };
    const parts = alice.idToken.split('.');
    const attacks: Record<string, string> = {
      'malformed: one word': 'garbage',
      'malformed: three dots of nothing': 'a.b.c',
      'malformed: JSON, not a JWT': Buffer.from('{"sub":"x"}').toString('base64url'),
      'malformed: two parts of a real token': parts.slice(0, 2).join('.'),
      'malformed: a real token plus a byte': `${alice.idToken}x`,
      'alg none': forged({}, 'unsigned', { alg: 'none', kid: cognito.kid }),
      'alg None': forged({}, 'unsigned', { alg: 'None', kid: cognito.kid }),
      'alg none with the real signature kept': `${forged({}, 'unsigned', { alg: 'none', kid: cognito.kid })}${parts[2]}`,
      'HS256 keyed with the public key (algorithm confusion)': forged(
        {},
        { hmac: cognito.publicPem },
        { alg: 'HS256', kid: cognito.kid },
      ),
      'signed by another key, same kid': forged({}, { rsa: attacker.privateKey }, header),
      'signed by another key, unknown kid': forged(
        {},
        { rsa: attacker.privateKey },
        { alg: 'RS256', kid: 'evil' },
      ),
      'signed by another key, its public key embedded (jwk header)': forged(
        {},
        { rsa: attacker.privateKey },
        { ...header, jwk: { ...attacker.publicJwk, kid: cognito.kid } },
      ),
      'signed by another key, jku pointing at the attacker': forged(
        {},
        { rsa: attacker.privateKey },
        { ...header, jku: 'http://127.0.0.1:1/jwks.json' },
      ),
      expired: forged({ iat: now() - 7200, exp: now() - 60 }, { rsa: cognito.privateKey }),
      'not valid yet (nbf in the future)': forged({ nbf: now() + 3600 }, { rsa: cognito.privateKey }),
      'wrong audience (another app client)': forged(
        { aud: 'another-app-client' },
        { rsa: cognito.privateKey },
      ),
      'no audience': forged({ aud: undefined }, { rsa: cognito.privateKey }),
      'wrong issuer (another user pool)': forged(
        { iss: `${endpoints().cognito.endpoint}/local_another_pool` },
        { rsa: cognito.privateKey },
      ),
      'an access token where an ID token is expected': alice.accessToken,
      'an access token, forged with the right audience': forged(
        { token_use: 'access' },
        { rsa: cognito.privateKey },
      ),
      'no token_use': forged({ token_use: undefined }, { rsa: cognito.privateKey }),
      "Alice's signature on Bob's claims": `${parts[0]}.${Buffer.from(
        JSON.stringify({ ...claims, sub: decodeClaims(bob.idToken).sub, email: bob.email }),
      ).toString('base64url')}.${parts[2]}`,
    };

    // Every answer is tallied as it came: its status, and each distinct body.
    const forgedAnswers: Record<string, number> = {};
    const bodies = new Set<string>();
    for (const [attack, token] of Object.entries(attacks)) {
      for (const [method, path] of ROUTES) {
        const response = await userApi(token, method, path, method === 'POST' ? {} : undefined);
        forgedAnswers[response.status] = (forgedAnswers[response.status] ?? 0) + 1;
        bodies.add(response.text);
        expect(response.status, `${attack}: ${method} ${path}`).toBe(401);
        expect(response.body, `${attack}: ${method} ${path}`).toEqual(BAD_TOKEN);
      }
    }

    // No token at all, or not as a Bearer: 401 too, saying how to send one.
    const withoutTokenAnswers: Record<string, number> = {};
    const withoutToken = [undefined, '', 'Bearer', 'Bearer ', `Basic ${btoa('alice:pw')}`, alice.idToken];
    for (const authorization of withoutToken) {
      const response = await fetch(`${endpoints().userApi}/keys`, {
        headers: authorization === undefined ? {} : { authorization },
      });
      const code = ((await response.json()) as typeof BAD_TOKEN).error.code;
      const label = `${response.status} ${code}`;
      withoutTokenAnswers[label] = (withoutTokenAnswers[label] ?? 0) + 1;
      expect(response.status, String(authorization)).toBe(401);
      expect(code).toBe('unauthorized');
    }
    await recordFigures('auth-attacks', {
      // What was sent (the test's lists), then what came back.
      forgedTokens: Object.keys(attacks).length,
      routes: ROUTES.length,
      withoutToken: withoutToken.length,
      forgedAnswers,
      distinctBodies: [...bodies],
      withoutTokenAnswers,
    });
  });

  it("Alice's valid token on Bob's key ids: 404, the same answer as for a key that does not exist", async () => {
    const created = await userApi(bob.idToken, 'POST', '/keys', { name: 'bob-secret' });
    expect(created.status).toBe(201);
    const bobKeys = () =>
      userApi(bob.idToken, 'GET', '/keys').then((r) => (r.body as { keys: KeyView[] }).keys);
    const before = await bobKeys();
    const foreignIds = before.map((k) => k.id); // the pending first key and the active one
    const nonexistent = ['key_0123456789abcdef0123456789abcdef', `key_first_${'0'.repeat(32)}`];

    const probes = (id: string) =>
      [
        ['POST', `/keys/${id}/roll`, {}],
        ['POST', `/keys/${id}/reveal`, undefined],
        ['DELETE', `/keys/${id}`, undefined],
        ['GET', `/usage?keyId=${id}`, undefined],
      ] as const;
    const answer = async (id: string) =>
      Promise.all(
        probes(id).map(async ([method, path, body]) => {
          const response = await userApi(alice.idToken, method, path, body);
          return `${method} ${path.replace(id, '{id}')} -> ${response.status} ${response.text}`;
        }),
      );
    const reference = await answer(nonexistent[0] as string);
    expect(reference.every((line) => line.includes('-> 404 '))).toBe(true);
    const answerSets = new Set<string>();
    for (const id of [...foreignIds, ...nonexistent]) {
      const answers = await answer(id);
      answerSets.add(JSON.stringify(answers));
      expect(answers, id).toEqual(reference);
    }

    // Nothing of Bob's changed, and Alice's list never shows it.
    const after = await bobKeys();
    expect(after).toEqual(before);
    const aliceKeys = (await userApi(alice.idToken, 'GET', '/keys')).body as { keys: KeyView[] };
    expect(aliceKeys.keys.map((k) => k.id)).not.toEqual(expect.arrayContaining(foreignIds.slice(0, 1)));
    await recordFigures('auth-cross-account', {
      foreignKeyIdsProbed: foreignIds.length,
      nonexistentIdsProbed: nonexistent.length,
      routesPerId: probes('x').length,
      answer: reference,
      distinctAnswerSets: answerSets.size,
      bobKeysUnchanged: JSON.stringify(after) === JSON.stringify(before),
    });
  });
});
