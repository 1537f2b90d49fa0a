/** Sign-in: a pasted token (airlock's own issuer) or an OIDC issuer's authorization flow. */
import { Layout } from './layout.tsx';

export function SignInPage(props: { csrf: string; oidc: string[]; error?: string | undefined }) {
  return (
    <Layout title="Sign in" error={props.error}>
      <form method="post" action="/console/signin" class="signin">
        <input type="hidden" name="_csrf" value={props.csrf} />
        <label for="token">Token</label>
        <textarea id="token" name="token" rows={4} required autocomplete="off" spellcheck={false}></textarea>
        <button type="submit">Sign in</button>
      </form>
      {props.oidc.length > 0 && (
        <section>
          <h2>Or sign in with</h2>
          <ul class="oidc">
            {props.oidc.map((name) => (
              <li>
                <a class="button" href={`/console/oidc/${name}/start`}>
                  {name}
                </a>
              </li>
            ))}
          </ul>
        </section>
      )}
    </Layout>
  );
}

/** After the identity provider's redirect: a same-site navigation, so the Strict cookie is sent. */
export function ContinuePage() {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="refresh" content="0;url=/console" />
        <title>Signed in · airlock console</title>
      </head>
      <body>
        <p>
          Signed in. <a href="/console">Continue to the console</a>.
        </p>
      </body>
    </html>
  );
}

export function MessagePage(props: { title: string; message: string }) {
  return (
    <Layout title={props.title} error={props.message}>
      <p>
        <a href="/console">Back to the console</a>
      </p>
    </Layout>
  );
}
