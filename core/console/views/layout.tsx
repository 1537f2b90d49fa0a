/** The page frame: navigation, who is signed in, sign-out, and any message. */
import type { Child } from 'hono/jsx';

export interface Viewer {
  agent: string;
  admin: boolean;
  csrf: string;
}

export function Layout(props: { title: string; viewer?: Viewer | undefined; active?: string; notice?: string | undefined; error?: string | undefined; children?: Child }) {
  const v = props.viewer;
  const nav = (href: string, label: string, key: string) => (
    <a href={href} aria-current={props.active === key ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · airlock console</title>
        <link rel="stylesheet" href="/console/static/console.css" />
        <script src="/console/static/console.js" defer></script>
      </head>
      <body>
        <header>
          <strong class="brand">airlock</strong>
          {v && (
            <nav>
              {nav('/console', 'Grants', 'grants')}
              {v.admin && nav('/console/sessions', 'Sessions', 'sessions')}
              {v.admin && nav('/console/audit', 'Audit', 'audit')}
            </nav>
          )}
          {v && (
            <form method="post" action="/console/signout" class="who">
              <span>
                {v.agent}
                {v.admin ? ' (admin)' : ''}
              </span>
              <input type="hidden" name="_csrf" value={v.csrf} />
              <button type="submit">Sign out</button>
            </form>
          )}
        </header>
        <main>
          <h1>{props.title}</h1>
          {props.notice && (
            <p class="notice" role="status">
              {props.notice}
            </p>
          )}
          {props.error && (
            <p class="error" role="alert">
              {props.error}
            </p>
          )}
          {props.children}
        </main>
      </body>
    </html>
  );
}

export function Csrf(props: { viewer: Viewer }) {
  return <input type="hidden" name="_csrf" value={props.viewer.csrf} />;
}
