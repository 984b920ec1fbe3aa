// Workload identity on oidc-provider: the clients of the workload tests, and the two grants
// oidc-provider does not ship, registered with registerGrantType and validated here with jose:
//
// - the JWT-bearer grant (RFC 7523 §2.1): the assertion's signature against the client's
//   registered keys, iss, aud (the token endpoint or the issuer), iat/exp (lifetime at most an
//   hour), a jti never seen before; `scope` from the form or, Google's way, from a claim;
// - token exchange (RFC 8693): a subject token signed by the test's "platform issuer"
//   (platform.key), its iss, aud and exp; an optional actor token likewise; the requested
//   token type (access_token by default, or a JWT, answered with token_type N_A).
//
// Both issue oidc-provider's own access token (a JWT for the resource server) carrying
// `workload` claims that say what was validated, so a test sees it at the API.
//
// oidc-provider authenticates every token request, naming the client by client_id. Google's
// JWT-bearer endpoint and STS take none: the assertion's iss names the client, and STS has no
// clients. `nameClient` does the same in front of the provider (unverified there; the grant
// handler then verifies the assertion with that client's keys).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as querystring from 'node:querystring';

import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
// The platform issuer's identifier and the audience of the subject tokens it writes.
export const PLATFORM_ISSUER = 'https://platform.cloudauth.test';
export const STS_AUDIENCE = 'https://sts.cloudauth.test/pool/provider';
export const SA_EMAIL = 'robot@cloudauth-test.iam.gserviceaccount.com';
export const WORKLOAD_FIELDS = [
  'assertion', 'subject_token', 'subject_token_type', 'requested_token_type', 'actor_token',
  'actor_token_type', 'audience',
];

const read = (dir, name) => fs.readFileSync(path.join(dir, name), 'utf8');
const publicJwk = (dir, file, extra) => ({
  ...crypto.createPublicKey(read(dir, file)).export({ format: 'jwk' }), ...extra,
});

export function workloadClients(dir, base) {
  const none = { ...base, token_endpoint_auth_method: 'none' };
  return [
    // Federated client assertions: the only registered key is the platform issuer's.
    {
      ...base,
      client_id: 'federated-client',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS256',
      jwks: { keys: [publicJwk(dir, 'platform.key', { kid: 'platform' })] },
    },
    // The JWT-bearer grant: a Google-style service account (its key in sa.key, put into a
    // service-account file by the test) and a client with a PEM key file.
    { ...none, client_id: SA_EMAIL, grant_types: [JWT_BEARER], jwks: { keys: [publicJwk(dir, 'sa.key', { kid: 'sa-key-1' })] } },
    { ...none, client_id: 'jwt-bearer-client', grant_types: [JWT_BEARER], jwks: { keys: [publicJwk(dir, 'ec256.key', { kid: 'ec256' })] } },
    // Token exchange: a public client, an STS without clients, a confidential client.
    { ...none, client_id: 'sts-public', grant_types: [TOKEN_EXCHANGE] },
    { ...none, client_id: 'sts-anonymous', grant_types: [TOKEN_EXCHANGE] },
    { ...base, client_id: 'sts-confidential', client_secret: base.secret, token_endpoint_auth_method: 'client_secret_basic', grant_types: [TOKEN_EXCHANGE] },
  ].map(({ secret, ...c }) => c);
}

// Koa middleware in front of oidc-provider: names the client of a token request that has none
// (see the top of this file). The body is parsed here and handed on as ctx.request.body.
export function nameClient() {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || !ctx.path.endsWith('/token') || !ctx.is('application/x-www-form-urlencoded')) {
      return next();
    }
    const chunks = [];
    let size = 0;
    for await (const chunk of ctx.req) {
      size += chunk.length;
      if (size > 56 * 1024) ctx.throw(413);
      chunks.push(chunk);
    }
    const body = querystring.parse(Buffer.concat(chunks).toString());
    const authenticated = body.client_id || body.client_assertion || ctx.get('authorization');
    if (!authenticated && body.grant_type === JWT_BEARER && typeof body.assertion === 'string') {
      try {
        body.client_id = decodeJwt(body.assertion).iss;
      } catch { /* the grant handler refuses it */ }
    }
    if (!authenticated && body.grant_type === TOKEN_EXCHANGE) body.client_id = 'sts-anonymous';
    if (!authenticated && body.client_id) ctx.state.clientNamed = true;
    ctx.request.body = body;
    return next();
  };
}

const invalidGrant = (errors, why) => new errors.InvalidGrant(why);
// The fields the client sent (not the client_id nameClient added).
const sentFields = (ctx) => Object.keys(ctx.oidc.body || {})
  .filter((k) => !(k === 'client_id' && ctx.state.clientNamed)).sort();

export function registerWorkloadGrants(provider, { dir, errors, record, resourceServerInfo, defaultResource }) {
  const platformKeys = createLocalJWKSet({ keys: [publicJwk(dir, 'platform.key', { kid: 'platform', alg: 'RS256' })] });
  const seenJti = new Set();

  async function issue(ctx, scope, workload, resource) {
    const { client } = ctx.oidc;
    const token = new provider.ClientCredentials({ client, scope: scope || undefined });
    token.resourceServer = new provider.ResourceServer(resource, resourceServerInfo(ctx, resource));
    ctx.oidc.workload = workload;
    const value = await token.save();
    return { access_token: value, expires_in: token.expiration, token_type: 'Bearer', scope: token.scope };
  }

  provider.registerGrantType(JWT_BEARER, async (ctx) => {
    const { client, params } = ctx.oidc;
    let claims;
    let header;
    try {
      const keys = createLocalJWKSet({ keys: client.jwks?.keys || [] });
      ({ payload: claims, protectedHeader: header } = await jwtVerify(params.assertion || '', keys, {
        issuer: client.clientId,
        audience: [`${provider.issuer}/token`, provider.issuer],
        requiredClaims: ['iat', 'exp', 'jti'],
      }));
    } catch (e) {
      record('grant_error', client.clientId, { error: 'invalid_grant', description: `assertion: ${e.code || e.message}` });
      throw invalidGrant(errors, `assertion: ${e.code || e.message}`);
    }
    if (claims.exp - claims.iat > 3600) throw invalidGrant(errors, 'assertion lives longer than an hour');
    if (seenJti.has(claims.jti)) {
      record('grant_error', client.clientId, { error: 'invalid_grant', description: 'jti replayed' });
      throw invalidGrant(errors, 'assertion jti replayed');
    }
    seenJti.add(claims.jti);
    const scope = claims.scope ?? params.scope;
    record('jwt_bearer', client.clientId, {
      header, claims, fields: sentFields(ctx), scope_from: claims.scope !== undefined ? 'claim' : 'form',
    });
    const resource = params.resource || defaultResource;
    ctx.body = await issue(ctx, scope, { grant: 'jwt_bearer', sub: claims.sub || claims.iss }, resource);
  }, ['assertion', 'scope', 'resource']);

  async function platformToken(token, what) {
    try {
      const { payload } = await jwtVerify(token || '', platformKeys, { issuer: PLATFORM_ISSUER, audience: STS_AUDIENCE, requiredClaims: ['sub', 'exp'] });
      return payload;
    } catch (e) {
      throw invalidGrant(errors, `${what}: ${e.code || e.message}`);
    }
  }

  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { client, params } = ctx.oidc;
    const body = ctx.oidc.body || {};
    if (params.subject_token_type !== TYPE_JWT) throw new errors.InvalidRequest(`subject_token_type ${params.subject_token_type}`);
    let subject;
    let actor;
    try {
      subject = await platformToken(params.subject_token, 'subject_token');
      if (params.actor_token !== undefined) {
        if (params.actor_token_type !== TYPE_JWT) throw new errors.InvalidRequest('actor_token_type');
        actor = await platformToken(params.actor_token, 'actor_token');
      }
    } catch (e) {
      record('grant_error', client.clientId, { error: e.error, description: e.error_description });
      throw e;
    }
    const requested = params.requested_token_type || TYPE_ACCESS_TOKEN;
    record('token_exchange', client.clientId, {
      subject: { sub: subject.sub, jti: subject.jti }, actor: actor ? { sub: actor.sub } : null,
      fields: sentFields(ctx), audience: body.audience ?? null, requested,
    });
    const resource = params.resource || body.audience || defaultResource;
    const answer = await issue(ctx, params.scope, { grant: 'token_exchange', sub: subject.sub, act: actor?.sub ?? null }, resource);
    // Asked for an ID token: answered with an access token, which a client must notice.
    const issued = requested === 'urn:ietf:params:oauth:token-type:id_token' ? TYPE_ACCESS_TOKEN : requested;
    ctx.body = { ...answer, issued_token_type: issued, ...(issued === TYPE_JWT ? { token_type: 'N_A' } : {}) };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'actor_token', 'actor_token_type', 'audience', 'scope', 'resource']);
}
