/**
 * Request bodies: the Content-Type rules of the contract (415), JSON parsing through koa-body
 * with a size limit (400 malformed, 413 too large), then the negotiated version's schema (422).
 * The validated body lands in `bodyOf(ctx)`.
 */
import { koaBody } from "koa-body";
import type { RequestSchemas } from "../schemas.ts";
import { mediaType, parameterMediaType, API_VERSIONS } from "../versions.ts";
import { classifyBodyType } from "./accept.ts";
import { type HttpContext, type Middleware, versionOf, bodyOf } from "./context.ts";
import { HttpProblem } from "./problems.ts";

const JSON_TYPES = [
  "application/json",
  ...API_VERSIONS.map(mediaType),
  ...API_VERSIONS.map((v) => parameterMediaType(v).split(";")[0]!),
];

export interface BodyOptions {
  schemas: RequestSchemas;
  limitBytes: number;
}

/** Builds the `acceptBody(schemaName)` middleware factory for the routes that take a body. */
export function bodyParser(options: BodyOptions): (schema: string) => Middleware {
  const parse = koaBody({
    json: true,
    jsonLimit: options.limitBytes,
    jsonStrict: true,
    jsonTypes: JSON_TYPES,
    multipart: false,
    urlencoded: false,
    text: false,
    onError: (error) => {
      throw translateParseError(error, options.limitBytes);
    },
  });

  return (schema) =>
    async function acceptBody(ctx, next) {
      const declared = classifyBodyType(ctx.get("Content-Type") || undefined);
      if (declared.kind === "missing") {
        if (hasBody(ctx))
          throw unsupported("a request body needs Content-Type: application/json or one of our vendor types");
        ctx.state.body = {}; // no body at all: the schema says what is missing
      } else if (declared.kind === "unsupported") {
        throw unsupported(
          `Content-Type ${declared.mediaType} is not accepted; send application/json or ${mediaType(versionOf(ctx))}`,
        );
      } else {
        if (declared.version !== undefined && declared.version !== versionOf(ctx)) {
          throw unsupported(
            `the body is declared as version ${declared.version} (${mediaType(declared.version)}) but the request negotiated version ${versionOf(ctx)}; send ${mediaType(versionOf(ctx))} or application/json`,
          );
        }
        await parse(ctx, async () => {});
        ctx.state.body = (ctx.request.body ?? {}) as Record<string, unknown>;
      }
      const errors = options.schemas.validate(versionOf(ctx), schema, bodyOf(ctx));
      if (errors.length > 0) {
        throw HttpProblem.of(
          "validation_failed",
          `the request body does not match the ${schema} schema of version ${versionOf(ctx)}`,
          { errors },
        );
      }
      await next();
    };
}

function hasBody(ctx: HttpContext): boolean {
  return ctx.get("Transfer-Encoding") !== "" || Number(ctx.get("Content-Length") || "0") > 0;
}

function unsupported(detail: string): HttpProblem {
  return HttpProblem.of("unsupported_media_type", detail, {}, { "Accept-Post": JSON_TYPES.join(", ") });
}

function translateParseError(error: Error, limitBytes: number): HttpProblem {
  const { status, type } = error as Error & { status?: number; type?: string };
  if (status === 413 || type === "entity.too.large") {
    return HttpProblem.of("payload_too_large", `the request body exceeds the limit of ${limitBytes} bytes`);
  }
  if (status === 415) return unsupported(error.message);
  if (type === "entity.parse.failed" || error instanceof SyntaxError || status === 400) {
    return HttpProblem.of("malformed_json", "the request body is not valid JSON (an object is expected)");
  }
  return HttpProblem.of("bad_request", "the request body could not be read");
}
