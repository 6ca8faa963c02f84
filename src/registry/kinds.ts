// The registries this service can attach to (REGISTRY_SCHEMA); src/registry/index.ts maps each to its adapter.
export const REGISTRY_SCHEMAS = ['builtin', 'crates-io'] as const;
export type RegistrySchema = (typeof REGISTRY_SCHEMAS)[number];
