// REGISTRY_SCHEMA -> its adapter. A third registry is one more adapter file (and its tests) and one line here.
import type { Config } from '../config';
import type { RegistryAdapter } from './adapter';
import { builtinRegistry } from './builtin';
import { cratesIoRegistry } from './cratesIo';
import type { RegistrySchema } from './kinds';

const ADAPTERS: Record<RegistrySchema, RegistryAdapter> = {
  builtin: builtinRegistry,
  'crates-io': cratesIoRegistry,
};

export function registryAdapter(config: Pick<Config, 'REGISTRY_SCHEMA'>): RegistryAdapter {
  return ADAPTERS[config.REGISTRY_SCHEMA];
}
