/*
 * V8 flags the server runs with (`npm start` passes them; the benchmarks and tests spawn the server with
 * the same). A larger young generation: every request leaves short-lived garbage (parsed bodies, results,
 * response strings) while hundreds of requests are in flight, and with V8's default 16 MiB semi-spaces
 * the scavenger ran ~17 times a second at 64 clients, copying the in-flight requests' live objects each
 * time: 13% of a core for the three-head query. 64 MiB semi-spaces cut that by 3x (README, bench/serve.ts).
 * They cannot be set once the process runs (v8.setFlagsFromString leaves the heap as configured).
 */
export const serverNodeFlags: readonly string[] = ['--max-semi-space-size=64'];
