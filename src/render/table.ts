// Tables as NGINX Service Mesh printed them (Go's tabwriter: minimum width 0, padding 2, space
// padding): every column but the last is padded to its widest cell plus two spaces. Pure.

export function renderTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.slice(0, -1).forEach((cell, index) => {
      widths[index] = Math.max(widths[index] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, index) =>
          index === row.length - 1 ? cell : cell.padEnd((widths[index] ?? 0) + 2),
        )
        .join('')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}
