// Per-tier test timeout (Jest's testTimeout is global, not per project).
jest.setTimeout(60000);
