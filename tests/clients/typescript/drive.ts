// A user's program on the generated TypeScript client (openapi-typescript + openapi-fetch);
// the test compiles it with `tsc --noEmit` against the types generated from the served document.
import createClient from "openapi-fetch";
import type { components, paths } from "./commonwatt";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];
// A registry route refuses a malformed request as the rec-registry does (its 422).
type InvalidRequest = Schemas["InvalidRequest"];
type ReadingsRefused = Schemas["ReadingsRefused"];

export async function drive(baseUrl: string, email: string, password: string): Promise<string[]> {
  const anonymous = createClient<paths>({ baseUrl });
  const login = await anonymous.POST("/auth/login", { body: { email, password } });
  if (login.data === undefined) throw new Error(login.error.detail);
  const api = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${login.data.access_token}` },
  });

  const memberKeys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.GET("/admin/communities/{community_key}/members", {
      params: { path: { community_key: "valle-verde" }, query: { limit: 2, cursor } },
    });
    if (page.data === undefined) throw new Error(page.error.code);
    memberKeys.push(...page.data.items.map((member: Schemas["Member"]) => member.key));
    cursor = page.data.next_cursor ?? undefined;
  } while (cursor !== undefined);

  const batch: Schemas["ReadingRows"] = {
    readings: [{ sensor_id: "sens-0010", channel: "power", ts: "2026-03-02T10:00:00Z", value: 1520 }],
  };
  const ingest = await api.POST("/telemetry/readings", { body: batch });
  if (ingest.response.status === 422) {
    const refused = ingest.error as ReadingsRefused;
    const codes: Schemas["ReadingRefusalCode"][] = refused.errors.map((item) => item.code);
    throw new Error(`refused ${refused.refused}: ${codes.join(", ")}`);
  }
  const stored: Schemas["IngestResult"] | undefined = ingest.data;

  const series = await api.GET("/telemetry/series", {
    params: {
      query: {
        sensor_id: ["sens-0010"], channel: "power",
        from: "2026-03-02T00:00:00Z", to: "2026-03-03T00:00:00Z", max_points: 500,
      },
    },
  });
  const points: number = series.data?.series[0]?.value.length ?? 0;

  const missing = await api.GET("/admin/communities/{community_key}/assets/{asset_key}", {
    params: { path: { community_key: "valle-verde", asset_key: "no-such-asset" } },
  });
  const problem: Problem | InvalidRequest | undefined = missing.error;

  const csv = await api.GET("/telemetry/export", {
    params: {
      query: {
        sensor_id: ["sens-0010"], from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z",
        format: "csv",
      },
    },
    parseAs: "text",
  });
  const rows: number = (csv.data ?? "").split("\n").length;

  return [...memberKeys, String(stored?.accepted), String(points), problem?.code ?? "", String(rows)];
}
