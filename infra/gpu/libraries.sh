# Sourced by package.sh and check-artifact.sh: which shared libraries an instance provides.

# The base system's C and C++ runtimes (glibc, libstdc++, libgcc_s): on every AMI.
base_system() {
  [[ $1 =~ ^(linux-vdso\.so|/lib64/ld-linux|ld-linux|lib(c|m|dl|rt|pthread|stdc\+\+|gcc_s)\.so) ]]
}

# The NVIDIA driver's own library, which must match the instance's kernel module.
nvidia_driver() {
  [[ $1 == libcuda.so.1 ]]
}
