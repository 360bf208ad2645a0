/** OpenAI's cursor page. */
export interface ListPage<T> {
  object: 'list';
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/** Builds a page from `limit + 1` fetched rows: the extra row only tells whether more exist. */
export function toListPage<T extends { id: string }>(rows: T[], limit: number): ListPage<T> {
  const data = rows.slice(0, limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: rows.length > limit,
  };
}
