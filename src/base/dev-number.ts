/** A `st_dev` number as the kernel prints it, "MAJ:MIN" (glibc's gnu_dev_major / gnu_dev_minor). */
export function devString(dev: number): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}
