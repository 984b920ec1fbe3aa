// The tests' own resource server: it accepts a request only when the access token is a JWT
// the provider signed (its JWKS, fetched over TLS), for one of the provider's resources, and
// when the token's binding holds: `cnf.x5t#S256` equals the SHA-256 of the client certificate
// this TLS connection presented; `cnf.jkt` equals the thumbprint of the DPoP proof's key, and
// the proof itself is right (typ, alg, signature, htm, htu, iat window, unique jti, ath, and
// the nonce when one was demanded). Any failed check is a 401 with the reason, so a test that
// gets a 200 has proven the binding. Paths under /nonce/ demand a DPoP nonce first
// (WWW-Authenticate: DPoP error="use_dpop_nonce" with DPoP-Nonce), as an API may.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';

import {
  calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, EmbeddedJWK, jwtVerify,
} from 'jose';

import { RESOURCES } from './provider.mjs';

const IAT_WINDOW_S = 60;
const PROOF_ALGS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'];

class Rejected extends Error {
  constructor(reason, challenge) {
    super(reason);
    this.challenge = challenge;
  }
}

function fetchJson(url, ca) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => {
        try { resolve(JSON.parse(body)); } catch (e) { reject(e); }
      });
    }).on('error', reject);
  });
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('base64url');

export async function startResourceServer({ dir, issuer, record, lifetimeMs }) {
  const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
  const jwks = createLocalJWKSet(await fetchJson(`${issuer}/jwks`, ca));
  const seenJti = new Set();
  const nonces = new Set(); // issued to callers of /nonce/ paths, each good for this run
  const stats = { requests: 0, accepted: 0, nonce_challenges: 0, rejections: [] };

  async function checkProof(req, url, token, jkt) {
    const proofs = req.headersDistinct.dpop || [];
    if (proofs.length !== 1) throw new Rejected(`expected one DPoP header, got ${proofs.length}`);
    const [proof] = proofs;
    const header = decodeProtectedHeader(proof);
    if (header.typ !== 'dpop+jwt') throw new Rejected(`proof typ ${header.typ}`);
    if (!PROOF_ALGS.includes(header.alg)) throw new Rejected(`proof alg ${header.alg}`);
    if (!header.jwk || header.jwk.d !== undefined) throw new Rejected('proof jwk missing or private');
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(proof, EmbeddedJWK, { algorithms: PROOF_ALGS, typ: 'dpop+jwt' }));
    } catch (e) {
      throw new Rejected(`proof signature: ${e.code || e.message}`);
    }
    const thumbprint = await calculateJwkThumbprint(header.jwk);
    if (thumbprint !== jkt) throw new Rejected('proof key does not match cnf.jkt');
    if (claims.htm !== req.method) throw new Rejected(`proof htm ${claims.htm} for ${req.method}`);
    const htu = URL.parse(claims.htu || '');
    const expected = `https://${req.headers.host}${url.pathname}`;
    if (!htu) throw new Rejected('proof htu missing');
    htu.search = '';
    htu.hash = '';
    if (htu.href !== expected) throw new Rejected(`proof htu ${htu.href}, expected ${expected}`);
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.iat !== 'number' || Math.abs(now - claims.iat) > IAT_WINDOW_S) {
      throw new Rejected(`proof iat ${claims.iat} outside ${IAT_WINDOW_S}s of ${now}`);
    }
    if (typeof claims.jti !== 'string' || !claims.jti) throw new Rejected('proof jti missing');
    if (seenJti.has(claims.jti)) throw new Rejected('proof jti replayed');
    if (claims.ath !== sha256(token)) throw new Rejected('proof ath is not the hash of the token');
    if (url.pathname.startsWith('/nonce/') && !nonces.has(claims.nonce)) {
      const nonce = crypto.randomBytes(16).toString('base64url');
      nonces.add(nonce);
      stats.nonce_challenges += 1;
      throw new Rejected(claims.nonce ? 'proof nonce unknown' : 'proof nonce missing', nonce);
    }
    seenJti.add(claims.jti);
    return { alg: header.alg, jkt: thumbprint, htm: claims.htm, htu: claims.htu, nonce: claims.nonce || null };
  }

  async function authorize(req, url) {
    const auth = req.headers.authorization || '';
    const match = /^(Bearer|DPoP) ([A-Za-z0-9._~+/-]+=*)$/.exec(auth);
    if (!match) throw new Rejected(auth ? 'malformed Authorization header' : 'no Authorization header');
    const [, scheme, token] = match;
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, jwks, { issuer, algorithms: ['ES256'] }));
    } catch (e) {
      throw new Rejected(`token: ${e.code || e.message}`);
    }
    const audiences = [claims.aud].flat();
    if (!audiences.some((aud) => RESOURCES.has(aud))) throw new Rejected(`token audience ${claims.aud}`);

    const peer = req.socket.getPeerCertificate(false);
    const certificate = peer && peer.raw ? sha256(peer.raw) : null;
    const cnf = claims.cnf || {};
    if (cnf['x5t#S256'] !== undefined && cnf['x5t#S256'] !== certificate) {
      throw new Rejected(certificate ? 'client certificate does not match cnf.x5t#S256' : 'no client certificate for a certificate-bound token');
    }
    let proof = null;
    if (cnf.jkt !== undefined) {
      if (scheme !== 'DPoP') throw new Rejected(`a DPoP-bound token sent with ${scheme}`);
      proof = await checkProof(req, url, token, cnf.jkt);
    } else if (scheme !== 'Bearer') {
      throw new Rejected(`${scheme} scheme for a token without cnf.jkt`);
    }
    return {
      scheme,
      client_id: claims.client_id,
      aud: claims.aud,
      scope: claims.scope || null,
      cnf: claims.cnf || null,
      extra_params: claims.extra_params || null,
      workload: claims.workload || null,
      sub: claims.sub || null,
      certificate,
      proof,
    };
  }

  async function handle(req, res) {
    const url = new URL(req.url, `https://${req.headers.host}`);
    let body = 0;
    for await (const chunk of req) body += chunk.length;
    if (url.pathname === '/_rs/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(stats));
      return;
    }
    stats.requests += 1;
    try {
      const seen = await authorize(req, url);
      stats.accepted += 1;
      record('api', seen.client_id || '', { method: req.method, path: url.pathname });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ...seen, method: req.method, path: url.pathname, body_bytes: body }));
    } catch (e) {
      if (!(e instanceof Rejected)) throw e;
      stats.rejections.push(e.message);
      const headers = { 'content-type': 'application/json' };
      if (e.challenge) {
        headers['www-authenticate'] = 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"';
        headers['dpop-nonce'] = e.challenge;
      } else {
        headers['www-authenticate'] = `Bearer error="invalid_token", error_description="${e.message.replace(/["\\]/g, '')}"`;
      }
      res.writeHead(401, headers);
      res.end(JSON.stringify({ error: e.challenge ? 'use_dpop_nonce' : 'invalid_token', reason: e.message }));
    }
  }

  // Two listeners, the same API: `url` is the sessions' base_url, `other` another origin,
  // to which a certificate-bound session must not present its certificate.
  const servers = [0, 1].map(() => {
    const server = https.createServer({
      key: fs.readFileSync(path.join(dir, 'server.key')),
      cert: fs.readFileSync(path.join(dir, 'server.pem')),
      ca,
      requestCert: true,
      rejectUnauthorized: false,
    }, (req, res) => {
      handle(req, res).catch((e) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`resource server error: ${e.message}`);
      });
    });
    server.keepAliveTimeout = 2000;
    server.requestTimeout = 10000;
    return server;
  });
  await Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, '127.0.0.1', ok))));
  const close = () => servers.forEach((s) => { s.close(); s.closeAllConnections(); });
  setTimeout(close, lifetimeMs).unref();
  const [url, other] = servers.map((s) => `https://127.0.0.1:${s.address().port}`);
  return { url, other, close };
}
