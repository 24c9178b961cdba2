import type { TemplateBuildRecord } from '../../domain/template.js';
import type { TemplateApi } from '../../service/template-api.js';
import type { TemplateListing } from '../../service/template-service.js';
import { AGENT_TYPE, DESKTOP_AGENT_TYPE } from '../../service/paperspace-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { PaperspaceErrorSchema, TemplateListQuery, TemplatePageSchema } from './schemas.js';

const DEFAULT_LIMIT = 20;

/** A template as the seed-style surface shows it. */
export function renderPaperspaceTemplate(l: TemplateListing, current: TemplateBuildRecord | null): Record<string, unknown> {
  const iso = (ms: number | null | undefined): string | null => (ms == null ? null : new Date(ms).toISOString());
  if (l.kind === 'built') {
    return {
      id: l.build.name, name: l.build.name, description: (current ?? l.build).spec.description,
      agentType: current?.result?.desktop ? DESKTOP_AGENT_TYPE : AGENT_TYPE, operatingSystemLabel: 'Linux',
      isServerWide: l.build.teamId === null, status: l.build.status, version: current?.version ?? null, dtCreated: iso(current?.finishedAt),
    };
  }
  const t = l.kind === 'directory' ? l.template : null;
  const name = t?.name ?? (l as { name: string }).name;
  return {
    id: name, name, description: t?.description ?? 'Built on this server the first time a machine is created from it.',
    agentType: t?.desktop ? DESKTOP_AGENT_TYPE : AGENT_TYPE, operatingSystemLabel: 'Linux',
    isServerWide: true, status: t ? 'ready' : 'not_built', version: t ? 1 : null, dtCreated: t?.created_at ?? null,
  };
}

/** "List OS templates" and "List templates", which seed 002 points templateId at. */
export function paperspaceTemplateRoutes(templates: TemplateApi, basePath: string): AnyRoute[] {
  const errors = {
    400: { description: 'Invalid request (VALIDATION_FAILED, INVALID_NEXT_TOKEN).', schema: PaperspaceErrorSchema },
    401: { description: 'Missing or unknown API key.', schema: PaperspaceErrorSchema },
  };
  const list = (osOnly: boolean, url: string, operationId: string, summary: string, description: string): AnyRoute =>
    defineRoute({
      tag: 'paperspace',
      auth: 'team',
      method: 'GET',
      url: `${basePath}${url}`,
      operationId,
      summary,
      description,
      query: TemplateListQuery,
      responses: { 200: { description: 'A page of templates, by name.', schema: TemplatePageSchema }, ...errors },
      handler: async ({ query, caller }) => {
        const page = await templates.list(caller, query.limit ?? DEFAULT_LIMIT, query.after, { paperspace: true, osOnly });
        return { hasMore: page.nextToken !== null, items: page.items.map((i) => renderPaperspaceTemplate(i.listing, i.current)), nextPage: page.nextToken };
      },
    });
  return [
    list(true, '/os-templates', 'paperspaceListOsTemplates', 'List OS templates', 'The server\'s own templates (base, desktop, python, node): every team sees them.'),
    list(false, '/templates', 'paperspaceListTemplates', 'List templates', 'Every template the team can create machines from: the OS templates, server-wide built ones and its own (POST /v1/templates).'),
  ];
}
