// A fake API for component tests: routes by method and path answer with JSON bodies (or fail like
// a lost connection), and every request is kept so a test can check what the page sent.
type Answer = { status?: number; body?: unknown } | "network-error";
type Handler = (request: Request, body: unknown) => Answer | Promise<Answer>;

export type Sent = { method: string; path: string; query: URLSearchParams; body: unknown; headers: Headers };

class FakeServer {
  private routes = new Map<string, Handler>();
  sent: Sent[] = [];

  on(method: string, path: string, handler: Handler | Answer): this {
    this.routes.set(`${method} ${path}`, typeof handler === "function" ? handler : () => handler);
    return this;
  }

  reset(): void {
    this.routes.clear();
    this.sent = [];
  }

  async handle(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url);
    const text = request.method === "GET" ? "" : await request.text();
    const body: unknown = text ? JSON.parse(text) : undefined;
    this.sent.push({ method: request.method, path: url.pathname, query: url.searchParams, body, headers: request.headers });
    const handler = this.routes.get(`${request.method} ${url.pathname}`);
    if (!handler) return json(404, { error: "not_found", detail: `No fake route for ${request.method} ${url.pathname}`, field: null });
    const answer = await handler(request, body);
    if (answer === "network-error") throw new TypeError("Failed to fetch");
    if (answer.status === 204) return new Response(null, { status: 204 });
    return json(answer.status ?? 200, answer.body ?? {});
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

export const fakeServer = new FakeServer();

export function apiError(error: string, detail: string, field: string | null = null) {
  return { error, detail, field };
}
