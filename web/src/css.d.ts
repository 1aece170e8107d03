// CSS imported `with { type: "text" }` (the lazily loaded chunks in lazy/): esbuild gives its text.
declare module "*.css" {
  const text: string;
  export default text;
}
