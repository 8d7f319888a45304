/**
 * Reading a /proc/PID/stat (or /proc/PID/task/TID/stat) line, proc(5), on Linux.
 */

/**
 * Field `n` of a stat line, numbered from 1 as proc(5) numbers them. The
 * command name (field 2) is in parentheses and may hold spaces and
 * parentheses itself, so the fields after it are counted from its last `)`.
 */
export function statField(stat: string, n: number): number {
  const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const value = Number(after[n - 3]);
  if (n < 3 || !Number.isInteger(value)) {
    throw new Error(`no field ${n} in the /proc stat line '${stat}'`);
  }
  return value;
}
