"""The first network of the getting-started page: a small CNN on scikit-learn's bundled real digits."""

# --8<-- [start:code]
import neuro
from neuro import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Network
from neuro.data import load_digits, train_test_split
from neuro.optimizers import Adam

# 1,797 real handwritten digits, 8×8 grey images, bundled with scikit-learn: no download
x, y = load_digits(images=True)  # x (1797, 8, 8, 1) float32 in [0, 1]; y (1797,) int64 class ids
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)

net = Network(input_shape=(8, 8, 1), loss="softmax_crossentropy", optimizer=Adam(1e-3), seed=0)
net.add(Conv2D(32, (3, 3), padding="same", activation="relu"))
net.add(MaxPool2D((2, 2)))
net.add(Flatten())
net.add(Dense(64, activation="relu"))
net.add(Dropout(0.25))
net.add(Dense(10, activation="softmax"))
net.summary()

history = net.fit(x_train, y_train, batch_size=32, epochs=10, validation_split=0.1, verbose=2)
print(net.evaluate(x_test, y_test))  # {'loss': ..., 'accuracy': ...}
classes, probabilities = net.predict_class(x_test[:5])
print(classes, probabilities.round(3), y_test[:5])
print(neuro.to_numpy(net.predict(x_test[:1])).round(3))  # the ten class probabilities of one digit
# --8<-- [end:code]
