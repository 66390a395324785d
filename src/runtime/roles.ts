// The in-cluster roles this executable provides, by name.
import { controllerRole } from './controller/controller-role';
import { createInitRole } from './init/init-role';
import { systemNetfilter } from './init/netfilter';
import type { RoleDefinition, RoleRegistry } from './role/role';

const roles: readonly RoleDefinition[] = [controllerRole, createInitRole(systemNetfilter)];

export const roleRegistry: RoleRegistry = new Map(roles.map((role) => [role.name, role]));
