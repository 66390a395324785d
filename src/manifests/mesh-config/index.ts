// The mesh configuration model: deploy's flags, their validation into FullMeshConfig, and its
// rendering as ConfigMap meshconfig and the MeshConfig resource. Pure.
export * from './deploy-flags';
export * from './deploy-input';
export * from './lb-method';
export * from './model';
export * from './render';
export * from './stored';
export * from './telemetry';
export * from './types';
export * from './upstream-ca';
