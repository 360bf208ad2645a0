/** OpenAI's error envelope; all four keys are always present. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
