{
  # node-gyp build of the same sources as CMakeLists.txt (npm run build:gyp).
  # gyp has no find_package: scripts/libtorch.js gives the source list, the
  # LibTorch flags and the VGGN_WITH_* defines, which CMakeLists.txt finds itself.
  "targets": [{
    "target_name": "vgg_native",
    "sources": ["<!@(node scripts/libtorch.js sources)"],
    "include_dirs": [
      "<!@(node scripts/libtorch.js onednn-include)",
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "native",
      "<!@(node scripts/libtorch.js include-dirs)"
    ],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "<!@(node scripts/libtorch.js defines)"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
    "cflags_cc": ["<!(node scripts/libtorch.js cxx-std-flag)", "-fexceptions", "-frtti", "<!@(node scripts/libtorch.js cflags)"],
    "ldflags": ["<!@(node scripts/libtorch.js ldflags)"],
    "libraries": ["<!@(node scripts/libtorch.js libs)", "-ldl"]
  }]
}
