// An OpenID Connect provider for the SSO tests: npm's oidc-provider over HTTPS, with one
// confidential client, accounts whose claims the test gives, and a signing key made at each
// start (so that a restart is a key rotation).
//
// node oidc_provider.mjs <oidc-provider package dir> <config.json>
//
// config.json: {"port", "issuer", "cert", "key" (PEM file paths), "client_id",
// "client_secret", "redirect_uri", "accounts": {"<login>": {claims...}}}.
//
// GET /__tamper?on=1 makes the token endpoint change the ID token's claims after signing
// (the signature no longer matches), for the test that certmint refuses such a token.

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

const [, , packageDir, configPath] = process.argv;
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const { default: Provider } = await import(path.join(packageDir, 'lib/index.js'));
const { generateKeyPair, exportJWK } = await import(
  path.join(packageDir, '../jose/dist/webapi/index.js')
);

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signing = await exportJWK(privateKey);
signing.kid = `key-${Date.now()}`;
signing.use = 'sig';
signing.alg = 'RS256';

const provider = new Provider(config.issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signing] },
  findAccount: async (_ctx, id) => {
    const claims = config.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: `sub-${id}`, ...claims }) };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});

let tamper = false;
provider.use(async (ctx, next) => {
  if (ctx.path === '/__tamper') {
    tamper = ctx.query.on === '1';
    ctx.body = { tamper };
    return;
  }
  await next();
  if (tamper && ctx.path === '/token' && ctx.body && ctx.body.id_token) {
    const [head, payload, signature] = ctx.body.id_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.preferred_username = 'admin';
    claims.groups = ['pki-admins'];
    const forged = Buffer.from(JSON.stringify(claims)).toString('base64url');
    ctx.body = { ...ctx.body, id_token: [head, forged, signature].join('.') };
  }
});

const server = https.createServer(
  { cert: fs.readFileSync(config.cert), key: fs.readFileSync(config.key) },
  provider.callback(),
);
server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
