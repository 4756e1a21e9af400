/**
 * A list for one log line: at most LOG_ITEMS items, then how many more. A reconciliation
 * that wrote 50,000 ipcache prefixes logged them all on one 1.3 MB line; the reconcile
 * report of the API keeps every item.
 */
export const LOG_ITEMS = 20;

export function logList(items: readonly string[]): string {
  if (items.length <= LOG_ITEMS) return items.join(', ');
  return `${items.slice(0, LOG_ITEMS).join(', ')} … and ${items.length - LOG_ITEMS} more (${items.length} in all)`;
}
