// oidc-provider (the certified OpenID Connect implementation) set up for cloudauth's
// client-credentials tests: one client per token-endpoint authentication method, DPoP with
// nonces required, certificate-bound tokens, resource indicators and discovery. Every access
// token is a JWT whose audience is its resource, so the resource server can verify it.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';

import Provider, { errors } from 'oidc-provider';

import { nameClient, registerWorkloadGrants, workloadClients, WORKLOAD_FIELDS } from './workload.mjs';

// The APIs this provider issues tokens for. DEFAULT_RESOURCE is used when a request names none
// (so every token is a JWT the resource server can verify); AUDIENCE_API is what Auth0-style
// `audience` selects.
export const DEFAULT_RESOURCE = 'urn:cloudauth:test-api';
export const RESOURCES = new Set([
  DEFAULT_RESOURCE,
  'https://api.cloudauth.test/',
  'https://other.cloudauth.test/',
  'https://audience.cloudauth.test/',
]);
export const SCOPES = 'api:read api:write';
export const TLS_CLIENT_SUBJECT = 'CN=cloudauth-tls-client';
export const CLIENT_SECRET = 'oidc-test-secret-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e';

// Form fields of a token request that are the protocol's own; any other field is echoed in
// the token's `extra_params` claim, so a test sees what `token_param.NAME` sent.
const PROTOCOL_FIELDS = new Set([
  'grant_type', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type',
  'scope', 'resource', ...WORKLOAD_FIELDS,
]);

const read = (dir, name) => fs.readFileSync(path.join(dir, name), 'utf8');

function publicJwk(dir, keyFile, extra = {}) {
  const jwk = crypto.createPublicKey(read(dir, keyFile)).export({ format: 'jwk' });
  return { ...jwk, ...extra };
}

function certificateDer(dir, certFile) {
  return new crypto.X509Certificate(read(dir, certFile)).raw.toString('base64');
}

function clients(dir) {
  const base = {
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope: SCOPES,
  };
  const everyKey = [
    publicJwk(dir, 'rsa.key', { kid: 'rsa', x5c: [certificateDer(dir, 'rsa.pem')] }),
    publicJwk(dir, 'rsa_trad.key', { kid: 'rsa-trad' }),
    publicJwk(dir, 'ec256.key', { kid: 'ec256' }),
    publicJwk(dir, 'ec256_sec1.key', { kid: 'ec256-sec1' }),
    publicJwk(dir, 'ec384.key', { kid: 'ec384' }),
    publicJwk(dir, 'ed25519.key', { kid: 'ed25519' }),
  ];
  return [
    { ...base, client_id: 'basic-client', client_secret: CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
    { ...base, client_id: 'post-client', client_secret: CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_post' },
    {
      ...base,
      client_id: 'secret-jwt-client',
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_jwt',
      token_endpoint_auth_signing_alg: 'HS256',
    },
    // One client per algorithm the issue names, each pinned to it...
    {
      ...base,
      client_id: 'pkjwt-rs256',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS256',
      jwks: { keys: [everyKey[0]] },
    },
    {
      ...base,
      client_id: 'pkjwt-es256',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [everyKey[2]] },
    },
    {
      ...base,
      client_id: 'pkjwt-eddsa',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'EdDSA',
      jwks: { keys: [everyKey[5]] },
    },
    // ...and one that takes any of them (PS256, ES384, the traditional PEM forms).
    {
      ...base,
      client_id: 'pkjwt-any',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: everyKey },
    },
    {
      ...base,
      client_id: 'tls-client',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: TLS_CLIENT_SUBJECT,
      tls_client_certificate_bound_access_tokens: true,
    },
    {
      ...base,
      client_id: 'self-signed-client',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      tls_client_certificate_bound_access_tokens: true,
      jwks: { keys: [publicJwk(dir, 'client_self.key', { x5c: [certificateDer(dir, 'client_self.pem')] })] },
    },
    // DPoP-bound tokens: Okta's combination (private_key_jwt + DPoP) and a plain secret one.
    {
      ...base,
      client_id: 'dpop-client',
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_post',
      dpop_bound_access_tokens: true,
    },
    {
      ...base,
      client_id: 'dpop-pkjwt-client',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      dpop_bound_access_tokens: true,
      jwks: { keys: [everyKey[2]] },
    },
    ...workloadClients(dir, { ...base, secret: CLIENT_SECRET }),
  ];
}

function resourceServerInfo(ctx, resource) {
  if (!RESOURCES.has(resource)) throw new errors.InvalidTarget(`unknown resource ${resource}`);
  return {
    scope: SCOPES,
    audience: resource,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 300,
    jwt: { sign: { alg: 'ES256' } },
  };
}

function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate(false);
  if (!peer || !peer.raw) return undefined;
  return new crypto.X509Certificate(peer.raw);
}

// `record` gets what each request showed the provider (never a secret or a signature):
// the client assertion's header and claims, the DPoP proof's header and claims, the
// request's fields other than the credentials.
export async function startProvider({ dir, record, lifetimeMs }) {
  const serverKey = read(dir, 'server.key');
  const serverCert = read(dir, 'server.pem');
  const caCert = read(dir, 'ca.pem');

  // Both listeners first, so the issuer and the mTLS alias know their ports.
  const plain = https.createServer({ key: serverKey, cert: serverCert });
  // The mutual-TLS listener asks for a client certificate and lets oidc-provider decide:
  // tls_client_auth wants one the CA issued, self_signed_tls_client_auth a registered one.
  const mtls = https.createServer({
    key: serverKey, cert: serverCert, ca: caCert, requestCert: true, rejectUnauthorized: false,
  });
  await Promise.all([plain, mtls].map((s) => new Promise((ok) => s.listen(0, '127.0.0.1', ok))));
  const issuer = `https://127.0.0.1:${plain.address().port}`;
  const mtlsOrigin = `https://127.0.0.1:${mtls.address().port}`;

  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'provider-es256', use: 'sig', alg: 'ES256' };

  const provider = new Provider(issuer, {
    clients: clients(dir),
    jwks: { keys: [signingKey] },
    clientDefaults: {
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [], id_token_signed_response_alg: 'ES256',
    },
    scopes: ['api:read', 'api:write'],
    clientAuthMethods: [
      'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt',
      'tls_client_auth', 'self_signed_tls_client_auth', 'none',
    ],
    enabledJWA: {
      clientAuthSigningAlgValues: ['HS256', 'RS256', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519'],
      dPoPSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'],
    },
    discovery: { mtls_endpoint_aliases: { token_endpoint: `${mtlsOrigin}/token` } },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      dPoP: {
        enabled: true,
        nonceSecret: crypto.randomBytes(32),
        requireNonce: () => true,
      },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: peerCertificate,
        certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => {
          const cert = peerCertificate(ctx);
          return property === 'tls_client_auth_subject_dn' && cert?.subject.trim() === expected;
        },
      },
      resourceIndicators: {
        enabled: true,
        // Auth0's `audience` names the API the way `resource` does.
        defaultResource: (ctx, client, oneOf) => oneOf || ctx.oidc.body?.audience || DEFAULT_RESOURCE,
        getResourceServerInfo: resourceServerInfo,
      },
    },
    extraTokenClaims: (ctx) => {
      const extra = {};
      for (const [name, value] of Object.entries(ctx.oidc.body || {})) {
        if (!PROTOCOL_FIELDS.has(name)) extra[name] = value;
      }
      const claims = Object.keys(extra).length ? { extra_params: extra } : {};
      if (ctx.oidc.workload) claims.workload = ctx.oidc.workload;
      return Object.keys(claims).length ? claims : undefined;
    },
    assertJwtClientAuthClaimsAndHeader: (ctx, claims, header, client) => {
      record('assertion', client.clientId, { header, claims });
    },
  });
  provider.use(nameClient());
  registerWorkloadGrants(provider, {
    dir, errors, record, resourceServerInfo, defaultResource: DEFAULT_RESOURCE,
  });
  provider.on('grant.success', (ctx) => {
    const proof = ctx.get('DPoP');
    const seen = { endpoint: ctx.href, fields: Object.keys(ctx.oidc.body || {}).sort() };
    if (ctx.oidc.body?.resource !== undefined) seen.resource = ctx.oidc.body.resource;
    if (proof) {
      const [header, claims] = proof.split('.').slice(0, 2)
        .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
      seen.dpop = { header, claims };
    }
    record('grant', ctx.oidc.client.clientId, seen);
  });
  provider.on('grant.error', (ctx, error) => {
    record('grant_error', ctx.oidc.client?.clientId || '', {
      error: error.error, description: error.error_description, detail: error.error_detail, endpoint: ctx.href,
    });
  });

  const callback = provider.callback();
  plain.on('request', callback);
  mtls.on('request', callback);
  for (const server of [plain, mtls]) {
    server.keepAliveTimeout = 2000;
    server.headersTimeout = 5000;
    server.requestTimeout = 10000;
  }
  const close = () => { plain.close(); mtls.close(); plain.closeAllConnections(); mtls.closeAllConnections(); };
  setTimeout(close, lifetimeMs).unref();
  return { issuer, mtlsOrigin, close };
}
