// Minimal RFC 4180 CSV parser: comma-separated, fields optionally in double quotes, "" for a quote
// inside a quoted field, newlines allowed inside quoted fields, CRLF or LF row ends, BOM ignored.

export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let inQuotes = false;
  let fieldStarted = false;
  const input = text.replace(/^\uFEFF/, '');
  const endRow = () => {
    row.push(field);
    rows.push(row);
    row = [];
    field = '';
    fieldStarted = false;
  };
  for (let i = 0; i < input.length; i++) {
    const char = input[i]!;
    if (inQuotes) {
      if (char === '"') {
        if (input[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          inQuotes = false;
        }
      } else {
        field += char;
      }
    } else if (char === '"' && field === '') {
      inQuotes = true;
      fieldStarted = true;
    } else if (char === ',') {
      row.push(field);
      field = '';
      fieldStarted = true;
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && input[i + 1] === '\n') i++;
      endRow();
    } else {
      field += char;
      fieldStarted = true;
    }
  }
  if (inQuotes) throw new Error('CSV: unterminated quoted field at end of input');
  if (fieldStarted || field !== '' || row.length > 0) endRow();
  return rows;
}
