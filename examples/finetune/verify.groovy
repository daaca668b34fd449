// The run trained, resumed, and wrote its outputs; the library said which kernels it used.
def log = new File(basedir, 'build.log').text
assert new File(basedir, 'target/tuned.safetensors').isFile() : 'the tuned weights'
assert new File(basedir, 'target/checkpoint.safetensors').isFile() : 'the checkpoint'
assert log.contains('FLOAT kernels: onednn') : 'the kernel line at start-up'
assert log.contains('resumed from target/checkpoint.safetensors after epoch 2') : 'the second run resumed'
return true
