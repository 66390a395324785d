// A stream of YAML documents, each starting with "---", as kubectl apply -f - reads them. The
// caller passes the yaml library's stringify (loaded on demand), so this stays pure. An object
// used twice is printed twice, never as a YAML anchor and alias.
export type YamlStringify = (
  value: unknown,
  options: { lineWidth: number; aliasDuplicateObjects: boolean },
) => string;

export function renderYamlDocuments(
  documents: readonly unknown[],
  stringify: YamlStringify,
): string {
  return documents
    .map(
      (document) => `---\n${stringify(document, { lineWidth: 0, aliasDuplicateObjects: false })}`,
    )
    .join('');
}
