/** What the client commands read from the environment (config/ is the only reader of it). */
export interface ClientEnv {
  /** A key for an openbatch server (wins over OPENAI_API_KEY). */
  OPENBATCH_API_KEY?: string | undefined;
  OPENAI_API_KEY?: string | undefined;
  OPENAI_BASE_URL?: string | undefined;
}

const NAMES = ['OPENBATCH_API_KEY', 'OPENAI_API_KEY', 'OPENAI_BASE_URL'] as const;

/** The client variables that are set (empty counts as unset). */
export function clientEnv(env: NodeJS.ProcessEnv = process.env): ClientEnv {
  const out: ClientEnv = {};
  for (const name of NAMES) if (env[name]) out[name] = env[name];
  return out;
}
