/** ulvm's version and the lvm2 release whose behaviour it follows. */
export const ULVM_VERSION = "0.1.0";
export const LVM2_COMPAT_VERSION = "2.03.16(2) (2022-05-18)";
export const LIBDM_COMPAT_VERSION = "1.02.185 (2022-05-18)";
