// The page's URLs come from its data-* attributes, which the template fills with {% url %}:
// no path is written in a script. URLs that take an id are reversed with the id 0.

export function withId(template, id) {
  if (!template.includes("/0/")) throw new Error(`URL template ${template} has no /0/ placeholder`);
  return template.replace("/0/", `/${encodeURIComponent(id)}/`);
}
