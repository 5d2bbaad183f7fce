// A real OpenID provider (the npm package oidc-provider) on 127.0.0.1, for the console's login test.
//
//   node provider.mjs PACKAGE_DIR PORT CLIENT_SECRET REDIRECT_URI
//
// PACKAGE_DIR holds node_modules/oidc-provider (scripts/setup/oidc-provider.sh installs it).
// Accounts: alice (groups ops), finn (groups finance), eve (no group the console maps). The
// login and consent steps are finished at once for the account named by login_hint (default
// alice): the test drives the real protocol — discovery, authorization, PKCE, the token
// endpoint, signed ID tokens, the key set — not a login form. Prints "ready ISSUER" once it listens.
import { createServer } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dir, port, secret, redirect] = process.argv.slice(2);
const { default: Provider } = await import(pathToFileURL(join(dir, "node_modules", "oidc-provider", "lib", "index.js")));

const accounts = {
  alice: { email: "alice@example.com", name: "Alice", groups: ["ops", "staff"] },
  finn: { email: "finn@example.com", name: "Finn", groups: ["finance"] },
  eve: { email: "eve@example.com", name: "Eve", groups: ["visitors"] },
};
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: "reconciler",
    client_secret: secret,
    redirect_uris: [redirect],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email"], profile: ["name", "groups"] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.proxy = false;

const callback = provider.callback();
const server = createServer(async (req, res) => {
  if (req.url.startsWith("/interaction/")) {
    try {
      const details = await provider.interactionDetails(req, res);
      const accountId = accounts[details.params.login_hint] ? details.params.login_hint : "alice";
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
        { mergeWithLastSubmission: false });
    } catch (error) {
      res.statusCode = 500;
      res.end(String(error));
    }
    return;
  }
  callback(req, res);
});
server.listen(Number(port), "127.0.0.1", () => console.log(`ready ${issuer}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
