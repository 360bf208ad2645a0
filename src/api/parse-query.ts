import type { z } from 'zod';
import { badRequest } from '../domain/app-error.ts';

/** Validates a query string with a protocol schema; a bad value is a 400 naming the parameter. */
export function parseQuery<S extends z.ZodType>(
  schema: S,
  query: Record<string, string>,
): z.infer<S> {
  const parsed = schema.safeParse(query);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue?.path.join('.') ?? null;
  throw badRequest(`Invalid value for '${param ?? 'query'}': ${issue?.message ?? 'invalid'}.`, {
    param,
    wireCode: 'invalid_value',
  });
}
