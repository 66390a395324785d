// The in-cluster roles this executable provides, by name.
import { agentRole } from './agent/agent-role';
import { certReloaderRole } from './cert-reloader/cert-reloader-role';
import { controllerRole } from './controller/controller-role';
import { createInitRole } from './init/init-role';
import { systemNetfilter } from './init/netfilter';
import { gatewayRole } from './gateway/gateway-role';
import { metricsRole } from './metrics/metrics-role';
import { registrarRole } from './registrar/registrar-role';
import type { RoleDefinition, RoleRegistry } from './role/role';

const roles: readonly RoleDefinition[] = [
  agentRole,
  certReloaderRole,
  controllerRole,
  createInitRole(systemNetfilter),
  gatewayRole,
  metricsRole,
  registrarRole,
];

export const roleRegistry: RoleRegistry = new Map(roles.map((role) => [role.name, role]));
