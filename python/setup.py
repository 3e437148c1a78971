"""Builds the fedrec package: libfedrec_embed (the C library with `fedrec train` embedded)
by CMake from the repository this directory sits in, then the cffi extension
fedrec._fedrec against it (API mode: struct layouts come from the C headers). The shared
library is copied into the package and found at run time through an $ORIGIN rpath.

Environment:
  FEDREC_EMBED_LIB    an already built libfedrec_embed.so to use (the project's test
                      command sets it, so the library is not built twice)
  FEDREC_SOURCE_DIR   the fedrec source tree (default: the parent of this directory)
  FEDREC_BUILD_DIR    where CMake builds (default: build/cmake here)
"""
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("FEDREC_SOURCE_DIR") or os.path.dirname(HERE)
LIBNAME = "libfedrec_embed.so"


def _library() -> str:
    """The path of libfedrec_embed.so: given, or built by CMake now."""
    given = os.environ.get("FEDREC_EMBED_LIB")
    if given:
        return given
    if not os.path.exists(os.path.join(ROOT, "CMakeLists.txt")):
        sys.exit(f"fedrec: no fedrec source tree at {ROOT} (set FEDREC_SOURCE_DIR or FEDREC_EMBED_LIB)")
    bdir = os.environ.get("FEDREC_BUILD_DIR") or os.path.join(HERE, "build", "cmake")
    jobs = os.environ.get("FEDREC_BUILD_JOBS", "2")
    subprocess.check_call(["cmake", "-S", ROOT, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release",
                           "-DFEDREC_TESTS=OFF", "-DFEDREC_BENCH=OFF"])
    subprocess.check_call(["cmake", "--build", bdir, "--target", "fedrec_embed", "-j", jobs])
    return os.path.join(bdir, LIBNAME)


class BuildExt(build_ext):
    def run(self) -> None:
        lib = _library()
        libdir = os.path.join(self.build_lib, "fedrec")
        os.makedirs(libdir, exist_ok=True)
        shutil.copy2(lib, os.path.join(libdir, LIBNAME))
        if self.inplace:
            shutil.copy2(lib, os.path.join(HERE, "fedrec", LIBNAME))
        for ext in self.extensions:
            ext.library_dirs.append(libdir)
        super().run()


setup(
    cffi_modules=["fedrec/_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildExt},
)
