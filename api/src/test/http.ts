import type { createApp } from '../app.ts';

type App = ReturnType<typeof createApp>;

/** A signed-in browser: keeps the session cookie and sends the CSRF token on writes. */
export async function signIn(app: App, email: string, password: string) {
  const res = await app.request('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const me = (await res.json()) as { csrfToken: string };
  return {
    cookie,
    csrfToken: me.csrfToken,
    request: (path: string, init: RequestInit & { json?: unknown } = {}) => {
      const headers = new Headers(init.headers);
      headers.set('cookie', cookie);
      if (init.method && init.method !== 'GET') headers.set('x-csrf-token', me.csrfToken);
      if (init.json !== undefined) headers.set('content-type', 'application/json');
      return app.request(path, {
        ...init,
        headers,
        body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      });
    },
  };
}

export function withToken(app: App, token: string) {
  return (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    return app.request(path, {
      ...init,
      headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
    });
  };
}

export async function expectEnvelope(res: Response, status: number, code?: string) {
  const body = (await res.json()) as {
    error?: { code: string; message: string; requestId: string; details?: unknown };
  };
  if (
    res.status !== status ||
    !body.error ||
    (code && body.error.code !== code) ||
    !body.error.message ||
    !body.error.requestId
  ) {
    throw new Error(`expected ${status} ${code ?? ''} envelope, got ${res.status} ${JSON.stringify(body)}`);
  }
  return body.error;
}
