// A real OpenID provider for jit's sign-in tests: npm `oidc-provider`
// (certified by the OpenID Foundation), pinned in package-lock.json and run on
// loopback by the tests (tests/common/idp.rs). Only the parts a deployment's
// IdP would have around it are ours: the people (a JSON file), a login page
// that checks their password, consent given on their behalf, and a small
// control door for the test to play the IdP's admin (`/test/users/NAME`:
// disable someone, change their groups).
//
// With `tokens_log`, every answer of the token endpoint is appended to that
// file, so the test can check that none of those tokens shows up anywhere.
//
// Usage: node oidc-idp.mjs CONFIG.json
//   { "port": 0, "kid": "k1", "client_id": "jit", "client_secret": "…",
//     "redirect_uris": ["http://127.0.0.1:1/v1/auth/callback"],
//     "ttl": { "AccessToken": 60, "IdToken": 60, "RefreshToken": 3600 },
//     "users": { "alice": { "password": "pw", "groups": ["developers"], "email": "alice@example.com" } } }
// Prints `listening on http://127.0.0.1:PORT` once it answers.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const users = config.users;

// A fresh RSA signing key per start, named by `kid`: restarting with another
// kid is the IdP rotating its key.
const jwk = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
jwk.kid = config.kid || 'k1';
jwk.alg = 'RS256';
jwk.use = 'sig';

const server = http.createServer();
server.listen(config.port || 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: config.client_id,
      client_secret: config.client_secret,
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: config.redirect_uris || ['http://127.0.0.1/unused'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'], groups: ['groups'] },
    // Groups and the user name in the ID token itself, as Keycloak and Okta
    // can be set up to send them.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true }, revocation: { enabled: true } },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, DeviceCode: 600, AuthorizationCode: 60, ...(config.ttl || {}) },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // A person disabled at the IdP is not found: their refresh fails with invalid_grant.
    findAccount: async (_ctx, id) => {
      const user = users[id];
      if (!user || user.disabled) return undefined;
      return {
        accountId: id,
        claims: async () => ({
          sub: id,
          preferred_username: user.username ?? id,
          name: id,
          email: user.email ?? `${id}@example.com`,
          groups: user.groups ?? [],
        }),
      };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
  });
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      const control = url.pathname.match(/^\/test\/users\/([^/]+)$/);
      if (control && req.method === 'POST') {
        const change = JSON.parse(await body(req) || '{}');
        const name = decodeURIComponent(control[1]);
        users[name] = { ...(users[name] || {}), ...change };
        return send(res, 200, 'application/json', JSON.stringify(users[name]));
      }
      // Every token the IdP hands out, kept for the test's secrets scan.
      if (url.pathname === '/token' && config.tokens_log) {
        const end = res.end.bind(res);
        res.end = (chunk, ...rest) => {
          if (chunk) fs.appendFileSync(config.tokens_log, `${chunk}\n`);
          return end(chunk, ...rest);
        };
      }
      const interaction = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
      if (interaction) return await interact(provider, req, res, !!interaction[2]);
      return callback(req, res);
    } catch (e) {
      console.error(e);
      send(res, 500, 'text/plain', String(e));
    }
  });
  console.log(`listening on ${issuer}`);
});

async function interact(provider, req, res, submitted) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (prompt.name === 'login' && !submitted) {
    return send(res, 200, 'text/html', `<!DOCTYPE html><title>Sign in</title>
      <form method="post" action="/interaction/${uid}/login">
        <input name="username"><input name="password" type="password"><button>Sign in</button>
      </form>`);
  }
  if (prompt.name === 'login') {
    const form = new URLSearchParams(await body(req));
    const user = users[form.get('username')];
    if (!user || user.disabled || user.password !== form.get('password')) {
      return send(res, 403, 'text/plain', 'wrong user name or password');
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.get('username') } }, { mergeWithLastSubmission: false });
  }
  // Consent, given as the person would: every scope and claim asked for.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

function body(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function send(res, status, type, text) {
  res.writeHead(status, { 'content-type': type });
  res.end(text);
}
