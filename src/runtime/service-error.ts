// src/service-error.ts: the error for a service the crawl depends on (Redis, PostgreSQL) that
// cannot be reached or refuses us. Its message says which (host:port) and why; the CLI prints it
// as one line, without a stack trace, and exits 1.

export class ServiceError extends Error {
  override readonly name = "ServiceError";
}
