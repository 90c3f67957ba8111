/**
 * The cluster's wire encoding of domain data: JSON, except that a `Date` travels tagged as
 * `{"$date": "<ISO 8601>"}` (MongoDB Extended JSON's convention) and comes back as a `Date`,
 * so a payload such as a message with `insertedAt: Date` reaches every node as the same value
 * the publishing node delivered locally. Plain JSON would turn it into a string silently.
 *
 *     decode(encode({ at: new Date(0) })) // → { at: Date(1970-01-01T00:00:00.000Z) }
 *
 * The one limit: a plain object whose only key is `$date` (with a string or null value) decodes
 * as a Date. Domain payloads never have one. Values JSON cannot carry (BigInt, cycles) make
 * `encode` throw; functions and `undefined` fields disappear, as in JSON.
 */

const DATE_TAG = "$date";

export function encode(value: unknown): string {
  return JSON.stringify(value, function replace(this: Record<string, unknown>, key, encoded: unknown) {
    // `encoded` has already been through Date#toJSON; the holder still has the Date.
    const raw = this[key];
    return raw instanceof Date ? { [DATE_TAG]: encoded } : encoded;
  });
}

export function decode(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
    const tagged = (value as Record<string, unknown>)[DATE_TAG];
    if ((typeof tagged === "string" || tagged === null) && Object.keys(value).length === 1)
      return new Date(tagged ?? Number.NaN);
    return value;
  });
}
